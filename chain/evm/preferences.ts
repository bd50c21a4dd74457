/**
 * Customer preferences travel as UTF-8 JSON bytes in ServiceInitiated. Decoding is strict: unknown keys, wrong types
 * and negative or non-finite numbers are refused with a message that names the key.
 */
import { hexToBytes, isHex, stringToHex, type Hex } from 'viem'
import type { DecodedPreferences } from '../events.js'
import type { Preferences } from '../../core/spec.js'

/** Largest preferences payload accepted, bytes. */
export const maxPreferencesBytes = 4096

const numberKeys = ['vcpu', 'memoryGiB', 'storageGiB'] as const
const boolKeys = ['highAvailability', 'spotAllowed'] as const
const listKeys = ['providers', 'excludeProviders'] as const
const knownKeys = new Set<string>(['regions', 'gpuModel', ...listKeys, ...numberKeys, ...boolKeys])

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' ? 'an object' : String(v))

/** Decode the preferences bytes of a request; empty bytes are `{}`. Never throws. */
export function decodePreferences(bytes: Hex): DecodedPreferences {
  const fail = (error: string): DecodedPreferences => ({ ok: false, error, raw: bytes })
  if (!isHex(bytes, { strict: true })) return fail('preferences: not hex bytes')
  const raw = hexToBytes(bytes)
  if (raw.length === 0) return { ok: true, value: {} }
  if (raw.length > maxPreferencesBytes) return fail(`preferences: ${raw.length} bytes, at most ${maxPreferencesBytes} allowed`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(raw)
  } catch {
    return fail('preferences: not valid UTF-8')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    return fail(`preferences: not valid JSON (${(err as Error).message})`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return fail(`preferences: got ${describe(parsed)}, expected a JSON object`)
  const problems: string[] = []
  const value: Preferences = {}
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (!knownKeys.has(k)) {
      problems.push(`preferences.${k}: unknown key (known: ${[...knownKeys].join(', ')})`)
      continue
    }
    if (k === 'regions') {
      if (!Array.isArray(v) || !v.every((r) => typeof r === 'string' && r.length > 0 && r.length <= 64 && /^[A-Za-z0-9._-]+$/.test(r))) {
        problems.push(`preferences.regions: got ${describe(v)}, expected an array of region names such as ["eu-west-1"]`)
      } else if (v.length > 64) problems.push(`preferences.regions: ${v.length} entries, at most 64 allowed`)
      else value.regions = [...(v as string[])]
    } else if (k === 'providers' || k === 'excludeProviders') {
      if (!Array.isArray(v) || v.length > 16 || !v.every((r) => typeof r === 'string' && /^[a-z0-9-]{1,32}$/.test(r))) {
        problems.push(`preferences.${k}: got ${describe(v)}, expected up to 16 provider names such as ["aws", "own"]`)
      } else value[k] = [...(v as string[])]
    } else if (k === 'gpuModel') {
      if (typeof v !== 'string' || v.length === 0 || v.length > 64) problems.push(`preferences.gpuModel: got ${describe(v)}, expected a model name such as "A100"`)
      else value.gpuModel = v
    } else if ((boolKeys as readonly string[]).includes(k)) {
      if (typeof v !== 'boolean') problems.push(`preferences.${k}: got ${describe(v)}, expected true or false`)
      else value[k as (typeof boolKeys)[number]] = v
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) problems.push(`preferences.${k}: got ${describe(v)}, expected a number >= 0`)
      else value[k as (typeof numberKeys)[number]] = v
    }
  }
  if (problems.length) return fail(problems.join('; '))
  return { ok: true, value }
}

/** Encode preferences for `requestService` (only the keys that are set); `{}` encodes as empty bytes. */
export function encodePreferences(p: Preferences): Hex {
  const clean = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined))
  if (Object.keys(clean).length === 0) return '0x'
  return stringToHex(JSON.stringify(clean))
}
