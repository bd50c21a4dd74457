/**
 * Fuzzing of the decoder and intake with malformed logs (issue 13): for every event type of the contracts, ≥ 1,000
 * records built from a valid encoding with random values in every field (also values wider than the field's type),
 * then mutated — bytes flipped, data truncated or extended, topics dropped, added or replaced. Each record either
 * decodes into a ChainEvent or is refused with MALFORMED_EVENT, nothing else; every decoded event goes through intake
 * (onto a state where the service exists and is live) without throwing, leaves a state that serializes to JSON, and
 * a request whose values are outside the contract bounds is recorded with problems (refunded before quoting).
 */
import fc from 'fast-check'
import { pino } from 'pino'
import { encodeAbiParameters, encodeEventTopics, toEventSelector, type AbiEvent, type Hex, type Log } from 'viem'
import { describe, expect, test } from 'vitest'
import { requestProblems } from '../../chain/evm/bounds.js'
import { chainEventAbi, decodeLog } from '../../chain/evm/decode.js'
import { MalformedEventError } from '../../chain/evm/errors.js'
import type { ChainEvent } from '../../chain/events.js'
import { applyEvents } from '../../daemon/intake.js'
import { emptyState, transition, type State } from '../../daemon/state.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)
const logger = pino({ level: 'silent' })
const operator = `0x${'11'.repeat(20)}`
const events = (chainEventAbi as unknown as AbiEvent[]).filter((x) => x.type === 'event')

const word = fc.oneof(
  fc.constantFrom(0n, 1n, 2n ** 8n - 1n, 2n ** 8n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 128n - 1n, 2n ** 128n, 2n ** 255n, 2n ** 256n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
  fc.bigInt({ min: 0n, max: 10n ** 9n }),
)
const hexOf = (n: bigint) => `0x${n.toString(16).padStart(64, '0')}` as Hex

/** A value of ABI type `type` from a random word: in range (masked) or not, as the encoder allows. */
function valueFor(type: string, w: bigint, bytes: Uint8Array): unknown {
  const bits = /^uint(\d+)$/.exec(type)?.[1]
  if (bits) return w & ((1n << BigInt(bits)) - 1n) // the encoder refuses wider values: wideness comes from mutations
  if (type === 'address') return `0x${(w & ((1n << 160n) - 1n)).toString(16).padStart(40, '0')}`
  if (type === 'bytes32') return hexOf(w)
  if (type === 'bytes') return `0x${Buffer.from(bytes).toString('hex')}`
  if (type === 'string') return Buffer.from(bytes).toString('latin1')
  throw new Error(`no generator for ${type}`)
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ maxLength: 80 }) }),
  fc.record({ kind: fc.constant('dropTopic' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('addTopic' as const), w: word }),
  fc.record({ kind: fc.constant('replaceTopic' as const), at: fc.nat(), w: word }),
  fc.record({ kind: fc.constant('wideWord' as const), at: fc.nat(), w: word }),
)

function mutate(topics: Hex[], data: Hex, m: { kind: string; [k: string]: unknown }): { topics: Hex[]; data: Hex } {
  const d = Buffer.from(data.slice(2), 'hex')
  switch (m.kind) {
    case 'flip':
      if (d.length) d[(m.at as number) % d.length] = m.byte as number
      return { topics, data: `0x${d.toString('hex')}` }
    case 'truncate':
      return { topics, data: `0x${d.subarray(0, d.length ? (m.at as number) % d.length : 0).toString('hex')}` }
    case 'extend':
      return { topics, data: `0x${Buffer.concat([d, Buffer.from(m.bytes as Uint8Array)]).toString('hex')}` }
    case 'dropTopic':
      // never topic0: the event type under test (an unknown topic0 is one case of the decoder's unit tests)
      return topics.length > 1 ? { topics: topics.filter((_, i) => i !== 1 + ((m.at as number) % (topics.length - 1))), data } : { topics, data }
    case 'addTopic':
      return { topics: [...topics, hexOf(m.w as bigint)], data }
    case 'replaceTopic': {
      const i = 1 + ((m.at as number) % Math.max(1, topics.length - 1)) // keep topic0: the event type under test
      return { topics: topics.map((t, j) => (j === i ? hexOf(m.w as bigint) : t)), data }
    }
    case 'wideWord': {
      // a whole 32-byte word where a narrower type (uint8, uint64, address) sits: wider than the ABI allows
      const words = Math.floor(d.length / 32)
      if (words) Buffer.from(hexOf(m.w as bigint).slice(2), 'hex').copy(d, ((m.at as number) % words) * 32)
      return { topics, data: `0x${d.toString('hex')}` }
    }
  }
  return { topics, data }
}

/** A state where services 1..3 exist for this operator, one requested, one active, one scaled to zero. */
function liveState(): State {
  const st = emptyState('op', 31337)
  const base = { chainId: 31337, blockHash: `0x${'aa'.repeat(32)}` as Hex, logIndex: 0 }
  const init = (id: bigint, n: number): ChainEvent => ({
    ...base, blockNumber: BigInt(n), txHash: hexOf(BigInt(1000 + n)), type: 'ServiceInitiated', serviceId: id, blueprintId: 1n,
    customer: `0x${'22'.repeat(20)}`, operator: operator as Hex, tier: 0, preferences: { ok: true, value: {} }, ttlSeconds: 3600n, deposit: 1000n, ratePerHour: 3600n,
  })
  applyEvents(st, [init(1n, 1), init(2n, 2), init(3n, 3)], { operator, chainId: 31337, logger })
  transition(st.services['2']!, 'provisioning', 'test')
  transition(st.services['2']!, 'active', 'test')
  transition(st.services['3']!, 'provisioning', 'test')
  transition(st.services['3']!, 'active', 'test')
  transition(st.services['3']!, 'scaled-to-zero', 'test')
  return st
}

describe('decoder and intake: fuzzed malformed logs', () => {
  test.each(events.map((e) => [e.name, e] as const))(`property: ${RUNS} malformed %s records — decoded or MALFORMED_EVENT, never a crash`, (name, abiEvent) => {
    let decoded = 0
    let refused = 0
    let malformedRequests = 0
    fc.assert(
      fc.property(
        fc.array(word, { minLength: abiEvent.inputs.length, maxLength: abiEvent.inputs.length }),
        fc.uint8Array({ maxLength: 300 }),
        fc.array(mutation, { maxLength: 3 }),
        fc.constantFrom(1n, 2n, 3n, 99n),
        fc.boolean(),
        (words, bytes, mutations, serviceId, ours) => {
          const args = Object.fromEntries(abiEvent.inputs.map((p, i) => [p.name!, valueFor(p.type, words[i]!, bytes)]))
          // most records concern a service the daemon knows (ids 1..3), requested for this operator
          if ('serviceId' in args) args.serviceId = serviceId
          if ('operator' in args && ours) args.operator = operator
          let topics = encodeEventTopics({ abi: [abiEvent], eventName: abiEvent.name, args } as Parameters<typeof encodeEventTopics>[0]) as Hex[]
          const nonIndexed = abiEvent.inputs.filter((p) => !p.indexed)
          let data = encodeAbiParameters(nonIndexed, nonIndexed.map((p) => args[p.name!]))
          for (const m of mutations) ({ topics, data } = mutate(topics, data, m))
          expect(topics[0]).toBe(toEventSelector(abiEvent))
          const log = { address: `0x${'e5'.repeat(20)}`, topics, data, blockNumber: 50n, blockHash: `0x${'bb'.repeat(32)}`, transactionHash: hexOf(words[0] ?? 1n), transactionIndex: 0, logIndex: 1, removed: false } as unknown as Log
          let e: ChainEvent
          try {
            e = decodeLog(log, 31337)
          } catch (err) {
            expect(err).toBeInstanceOf(MalformedEventError)
            refused++
            return
          }
          decoded++
          expect(e.type).toBe(name)
          // nothing wider than its ABI type gets through
          for (const [k, v] of Object.entries(e)) {
            if (typeof v === 'bigint' && ['serviceId', 'blueprintId', 'ttlSeconds', 'activatedAt', 'endsAt', 'paidUntil', 'settledAt', 'blockNumber'].includes(k)) expect(v).toBeLessThan(2n ** 64n)
            if (k === 'tier') expect(v as number).toBeLessThanOrEqual(255)
            if (typeof v === 'string' && /^(customer|operator|payer|developer|by)$/.test(k)) expect(v).toMatch(/^0x[0-9a-fA-F]{40}$/)
          }
          const st = liveState()
          expect(() => applyEvents(st, [e], { operator, chainId: 31337, logger })).not.toThrow()
          expect(() => JSON.stringify(st)).not.toThrow()
          // a new request for this operator (id 99: not in the state before) with values out of bounds carries problems
          if (e.type === 'ServiceInitiated' && e.serviceId === 99n && e.operator.toLowerCase() === operator && requestProblems(e).length) {
            malformedRequests++
            expect(st.services['99']!.problems?.length).toBeGreaterThan(0)
          }
        },
      ),
      { numRuns: RUNS },
    )
    console.log(`fuzz ${name}: records=${decoded + refused} decoded=${decoded} malformed_event=${refused} out_of_bounds_requests=${malformedRequests} crashes=0`)
    expect(decoded + refused).toBe(RUNS)
  })
})
