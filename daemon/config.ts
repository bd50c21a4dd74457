/**
 * The operator's config: the core sections (config/schema.ts) composed with every provider's own section from the
 * factory table (daemon/providers.ts). `OperatorConfig` is derived from that schema.
 */
import type { z } from 'zod'
import { createConfigSchema } from '../config/schema.js'
import { loadConfigWith, parseConfigWith, type LoadConfigOptions } from '../config/load.js'
import { providerSections } from './providers.js'

export { ConfigError, type ConfigProblem, type LoadConfigOptions } from '../config/load.js'

export const operatorConfigSchema = createConfigSchema(providerSections)

/** The validated, frozen config the daemon runs on. */
export type OperatorConfig = z.output<typeof operatorConfigSchema>

/** Validate an already-parsed TOML document. Throws ConfigError listing every problem. */
export const parseConfig = (doc: unknown, o: LoadConfigOptions = {}): OperatorConfig => parseConfigWith(operatorConfigSchema, doc, o)

/** Read, parse and validate the operator's TOML file. Throws ConfigError listing every problem. */
export const loadConfig = (file: string, o: Omit<LoadConfigOptions, 'file'> = {}): OperatorConfig => loadConfigWith(operatorConfigSchema, file, o)
