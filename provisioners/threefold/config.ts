/** `[providers.threefold]`: the ThreeFold Grid, paid in TFT from the operator's twin (its mnemonic by reference). */
import { z } from 'zod'
import { decimalString, filePath, nonNeg, posInt, secretRef } from '../../config/fields.js'

const wsUrl = z.string().regex(/^wss?:\/\/\S+$/, { error: 'expected a ws:// or wss:// URL' })
const httpUrl = z.string().regex(/^https?:\/\/\S+$/, { error: 'expected an http(s):// URL' })

export const threefoldSection = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** The twin's mnemonic: `env:NAME` or `file:PATH`, never a literal. */
    mnemonic: secretRef.optional(),
    /**
     * The twin's id on TFChain (the dashboard shows it beside the twin's account): the daemon follows this twin's
     * contracts, bills and grace periods (chain/substrate/watchTfchain.ts). Required when enabled.
     */
    twin_id: posInt('twin id').optional(),
    network: z.enum(['dev', 'qa', 'test', 'main']).default('main'),
    substrate_url: wsUrl.default('wss://tfchain.grid.tf/ws'),
    relay_url: wsUrl.default('wss://relay.grid.tf'),
    proxy_url: httpUrl.default('https://gridproxy.grid.tf'),
    graphql_url: httpUrl.optional(),
    /**
     * polkadot.js type definitions (a JSON file) for a TFChain runtime whose metadata carries none (v12, e.g. the
     * spec 61 test runtime); today's mainnet (metadata v14) needs none. Used by the watcher, the twin check and the
     * TFT/USD rate of the runway check.
     */
    tfchain_types: filePath.optional(),
    /** Refuse to deploy when the TFT balance cannot pay this many hours of all the twin's grid contracts. */
    min_runway_hours: nonNeg('hours').default(72),
    /** Added to every USD→TFT conversion, as a fraction ("0.02" = 2 %). */
    tft_buffer: decimalString('a fraction').default('0.02'),
    /** Farms the operator allows (farm ids); empty = every farm. */
    farms: z.array(posInt('farm id')).default([]),
    /** Most VMs at once on the grid. */
    max_instances: posInt('instance count').default(20),
    /** A node where a deployment failed is skipped this long, ms. */
    node_cooldown_ms: posInt('ms').default(30 * 60_000),
    /** Zero-OS flist that runs native artifacts (downloads, sha256-verifies and starts the blueprint's binary). */
    runner_flist: httpUrl.default('https://hub.grid.tf/tf-official-apps/base:latest.flist'),
    /** A new VM's first port must accept TCP connections within this long (flist download and boot), ms. */
    boot_timeout_ms: posInt('ms').default(600_000),
  })
  .superRefine((s, ctx) => {
    if (s.enabled && !s.mnemonic) ctx.addIssue({ code: 'custom', path: ['mnemonic'], message: 'required when enabled: a secret reference such as "env:TF_MNEMONIC"' })
    if (s.enabled && s.twin_id === undefined) ctx.addIssue({ code: 'custom', path: ['twin_id'], message: "required when enabled: the twin's id on TFChain, whose contracts the daemon follows" })
    if (Number(s.tft_buffer) > 1) ctx.addIssue({ code: 'custom', path: ['tft_buffer'], message: `got ${s.tft_buffer}, expected a fraction <= 1 (0.02 = 2 %)` })
  })
  .transform((s) => ({
    enabled: s.enabled,
    mnemonic: s.mnemonic,
    ...(s.twin_id !== undefined && { twinId: s.twin_id }),
    network: s.network,
    substrateUrl: s.substrate_url,
    relayUrl: s.relay_url,
    proxyUrl: s.proxy_url,
    ...(s.graphql_url && { graphqlUrl: s.graphql_url }),
    ...(s.tfchain_types && { tfchainTypes: s.tfchain_types }),
    minRunwayHours: s.min_runway_hours,
    tftBuffer: s.tft_buffer,
    farms: s.farms,
    maxInstances: s.max_instances,
    nodeCooldownMs: s.node_cooldown_ms,
    runnerFlist: s.runner_flist,
    bootTimeoutMs: s.boot_timeout_ms,
  }))

export type ThreefoldSection = z.output<typeof threefoldSection>
