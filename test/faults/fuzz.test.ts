/**
 * Fuzzed malformed records through the decoder and intake (fast-check): for every event type the daemon consumes,
 * at least 1,000 logs with the event's topic0 and hostile topics and data — random bytes, truncated or overlong data,
 * ABI words at the extremes (0, 1, 2^63, 2^64-1, 2^128, 2^255, 2^256-1), dirty high bits in narrow fields, random
 * offsets and lengths for dynamic fields. Every record either decodes into a ChainEvent or is refused as
 * MALFORMED_EVENT, and every decoded event goes through intake (against a state that knows the service) without a
 * throw, leaving ledgers as whole non-negative base-unit amounts. Prints one line: `fuzz: <type>=N ... crashes=0`.
 */
import fc from 'fast-check'
import { pino } from 'pino'
import { encodeAbiParameters, toEventSelector, type AbiEvent, type AbiParameter, type Hex, type Log } from 'viem'
import { describe, expect, test } from 'vitest'
import { chainEventAbi, decodeLog } from '../../chain/evm/decode.js'
import { MalformedEventError } from '../../chain/evm/errors.js'
import type { ChainEvent } from '../../chain/events.js'
import { applyEvents } from '../../daemon/intake.js'
import { emptyState, type State } from '../../daemon/state.js'

const RUNS = 1000
const logger = pino({ level: 'silent' })
const operator = `0x${'a0'.padStart(40, '0')}` as const
const hex32 = (n: bigint) => `0x${n.toString(16).padStart(64, '0')}` as Hex
const EXTREMES = [0n, 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 128n, 2n ** 255n, 2n ** 256n - 1n]

const word = fc.oneof(
  fc.constantFrom(...EXTREMES).map(hex32),
  fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map(hex32),
  // small numbers: plausible ids, offsets and lengths of dynamic fields
  fc.bigInt({ min: 0n, max: 4096n }).map(hex32),
)
const randomBytes = fc.uint8Array({ minLength: 0, maxLength: 400 }).map((b) => `0x${Buffer.from(b).toString('hex')}` as Hex)
/** Data as whole ABI words (decodable shapes with hostile values), or raw bytes (truncated, odd lengths). */
const data = fc.oneof(fc.array(word, { minLength: 0, maxLength: 14 }).map((ws) => `0x${ws.map((w) => w.slice(2)).join('')}` as Hex), randomBytes)
/** A value of an ABI type at its extremes (or random within it): what a hostile but well-formed emitter could send. */
function valueOf(t: string): fc.Arbitrary<unknown> {
  const m = /^uint(\d+)$/.exec(t)
  if (m) {
    const max = 2n ** BigInt(m[1]!) - 1n
    return fc.oneof(fc.constantFrom(...EXTREMES.filter((x) => x <= max), max), fc.bigInt({ min: 0n, max }))
  }
  if (t === 'address') return fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${Buffer.from(b).toString('hex')}`)
  if (t === 'bool') return fc.boolean()
  if (t === 'bytes32') return fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `0x${Buffer.from(b).toString('hex')}`)
  if (t === 'bytes') return fc.uint8Array({ minLength: 0, maxLength: 600 }).map((b) => `0x${Buffer.from(b).toString('hex')}`)
  if (t === 'string') return fc.string({ maxLength: 300, unit: 'binary' })
  return fc.constant(undefined)
}
/** Data that is a well-formed ABI encoding of the event's own non-indexed inputs, with hostile values. */
const wellFormed = (ev: AbiEvent) => {
  const inputs = ev.inputs.filter((i) => !i.indexed) as AbiParameter[]
  return fc.tuple(...inputs.map((i) => valueOf(i.type))).map((vals) => encodeAbiParameters(inputs, vals))
}

/** Indexed topics: a known service id half of the time (so intake acts on it), else any word. */
const topic = fc.oneof(fc.constantFrom(1n, 2n, 3n).map(hex32), word)

function stateKnowingServices(): State {
  const st = emptyState('fuzz', 31337)
  const events: ChainEvent[] = [1n, 2n, 3n].map((id, i) => ({
    chainId: 31337,
    blockNumber: 1n,
    blockHash: hex32(1n),
    txHash: hex32(1000n + id),
    logIndex: i,
    type: 'ServiceInitiated',
    serviceId: id,
    blueprintId: 1n,
    customer: `0x${'c0'.padStart(40, '0')}`,
    operator,
    tier: 0,
    preferences: { ok: true, value: {} },
    ttlSeconds: 3600n,
    deposit: 1_000_000n,
    ratePerHour: 3_600_000n,
  }))
  applyEvents(st, events, { operator, chainId: 31337, logger })
  return st
}

const events = (chainEventAbi as readonly AbiEvent[]).filter((e) => e.type === 'event')
const counts: Record<string, { runs: number; decoded: number; refused: number }> = {}
let crashes = 0

describe('fuzz: decoder and intake', () => {
  for (const ev of events) {
    test(`behavior: ${ev.name} — ${RUNS} malformed records, no crash`, () => {
      const selector = toEventSelector(ev)
      const c = (counts[ev.name] = { runs: 0, decoded: 0, refused: 0 })
      let block = 10n
      fc.assert(
        fc.property(fc.array(topic, { minLength: 0, maxLength: 4 }), fc.oneof(data, wellFormed(ev)), fc.boolean(), (topics, d, wrongAddressCase) => {
          c.runs++
          block++
          const log = {
            address: wrongAddressCase ? `0x${'E5'.padStart(40, '0')}` : `0x${'e5'.padStart(40, '0')}`,
            blockHash: hex32(block),
            blockNumber: block,
            transactionHash: hex32(block * 7n),
            transactionIndex: 0,
            logIndex: 0,
            removed: false,
            topics: [selector, ...topics] as [Hex, ...Hex[]],
            data: d,
          } as Log
          let decoded: ChainEvent
          try {
            decoded = decodeLog(log, 31337)
          } catch (err) {
            if (err instanceof MalformedEventError && err.code === 'MALFORMED_EVENT') {
              c.refused++
              return true
            }
            crashes++
            throw err
          }
          c.decoded++
          const st = stateKnowingServices()
          try {
            applyEvents(st, [decoded], { operator, chainId: 31337, logger })
          } catch (err) {
            crashes++
            throw err
          }
          for (const s of Object.values(st.services)) for (const v of [s.ledger.paid, s.ledger.withdrawn, s.ledger.refunded, s.ledger.earned]) expect(v).toMatch(/^\d+$/)
          return true
        }),
        { numRuns: RUNS },
      )
      expect(c.runs).toBeGreaterThanOrEqual(RUNS)
    })
  }

  test('default: the fuzz figures', () => {
    const line = `fuzz: ${Object.entries(counts)
      .map(([k, v]) => `${k}=${v.runs}(decoded ${v.decoded}, refused ${v.refused})`)
      .join(' ')} crashes=${crashes}`
    console.log(line)
    expect(Object.keys(counts).length).toBe(events.length)
    expect(crashes).toBe(0)
  })
})
