import { encodeAbiParameters, encodeEventTopics, getAddress, stringToHex, type Hex, type Log } from 'viem'
import { describe, expect, test } from 'vitest'
import { blueprintRegistryAbi, serviceEscrowAbi } from '../contracts/abi.js'
import { decodeLog } from './decode.js'
import { MalformedEventError } from './errors.js'
import { reasonToBytes32 } from './reason.js'

const meta = {
  address: '0x00000000000000000000000000000000000000e5' as Hex,
  blockHash: `0x${'11'.repeat(32)}` as Hex,
  blockNumber: 12n,
  transactionHash: `0x${'22'.repeat(32)}` as Hex,
  transactionIndex: 0,
  logIndex: 3,
  removed: false,
}
const customer = getAddress('0x00000000000000000000000000000000000000c0')
const operator = getAddress('0x00000000000000000000000000000000000000a0')

function log(topics: Hex[], data: Hex): Log {
  return { ...meta, topics: topics as [Hex, ...Hex[]], data } as Log
}
const event = (abi: typeof serviceEscrowAbi | typeof blueprintRegistryAbi, eventName: string, args: Record<string, unknown>) =>
  encodeEventTopics({ abi, eventName, args } as Parameters<typeof encodeEventTopics>[0]) as Hex[]

const serviceInitiated = (prefs: Hex) =>
  log(
    event(serviceEscrowAbi, 'ServiceInitiated', { serviceId: 5n, blueprintId: 2n, customer }),
    encodeAbiParameters(
      [{ type: 'address' }, { type: 'uint8' }, { type: 'bytes' }, { type: 'uint64' }, { type: 'uint256' }, { type: 'uint256' }],
      [operator, 1, prefs, 3600n, 1_000_000n, 7_200_000n],
    ),
  )

describe('decodeLog', () => {
  const identity = { chainId: 31337, blockNumber: 12n, blockHash: meta.blockHash, txHash: meta.transactionHash, logIndex: 3 }

  test.each<[string, Log, Record<string, unknown>]>([
    [
      'BlueprintRegistered',
      log(event(blueprintRegistryAbi, 'BlueprintRegistered', { blueprintId: 9n, developer: customer }), encodeAbiParameters([{ type: 'string' }], ['echo'])),
      { type: 'BlueprintRegistered', blueprintId: 9n, developer: customer, name: 'echo' },
    ],
    [
      'ServiceInitiated',
      serviceInitiated(stringToHex('{"regions":["eu"]}')),
      { type: 'ServiceInitiated', serviceId: 5n, blueprintId: 2n, customer, operator, tier: 1, ttlSeconds: 3600n, deposit: 1_000_000n, ratePerHour: 7_200_000n, preferences: { ok: true, value: { regions: ['eu'] } } },
    ],
    [
      'ServiceActivated',
      log(event(serviceEscrowAbi, 'ServiceActivated', { serviceId: 5n }), encodeAbiParameters([{ type: 'uint64' }, { type: 'uint64' }], [1_700_000_000n, 1_700_003_600n])),
      { type: 'ServiceActivated', serviceId: 5n, activatedAt: 1_700_000_000n, endsAt: 1_700_003_600n },
    ],
    [
      'PaymentReceived',
      log(event(serviceEscrowAbi, 'PaymentReceived', { serviceId: 5n, payer: customer }), encodeAbiParameters([{ type: 'uint256' }, { type: 'uint256' }, { type: 'uint64' }, { type: 'uint64' }], [10n, 20n, 30n, 25n])),
      { type: 'PaymentReceived', serviceId: 5n, payer: customer, amount: 10n, balance: 20n, paidUntil: 30n, settledAt: 25n },
    ],
    [
      'TierChanged',
      log(event(serviceEscrowAbi, 'TierChanged', { serviceId: 5n }), encodeAbiParameters([{ type: 'uint8' }, { type: 'uint256' }, { type: 'uint256' }, { type: 'uint64' }], [2, 99n, 50n, 40n])),
      { type: 'TierChanged', serviceId: 5n, tier: 2, ratePerHour: 99n, balance: 50n, settledAt: 40n },
    ],
    [
      'ServiceTerminated',
      log(event(serviceEscrowAbi, 'ServiceTerminated', { serviceId: 5n, by: customer }), '0x'),
      { type: 'ServiceTerminated', serviceId: 5n, by: customer },
    ],
    [
      'Withdrawn',
      log(event(serviceEscrowAbi, 'Withdrawn', { serviceId: 5n, operator }), encodeAbiParameters([{ type: 'uint256' }, { type: 'uint256' }, { type: 'uint64' }], [77n, 5n, 60n])),
      { type: 'Withdrawn', serviceId: 5n, operator, amount: 77n, balance: 5n, settledAt: 60n },
    ],
    [
      'Refunded',
      log(event(serviceEscrowAbi, 'Refunded', { serviceId: 5n, customer }), encodeAbiParameters([{ type: 'uint256' }, { type: 'bytes32' }], [8n, reasonToBytes32('NO_FEASIBLE_OFFER')])),
      { type: 'Refunded', serviceId: 5n, customer, amount: 8n, reason: 'NO_FEASIBLE_OFFER' },
    ],
  ])('default: %s', (_, l, expected) => {
    expect(decodeLog(l, 31337)).toEqual({ ...identity, ...expected })
  })

  test('behavior: undecodable preferences are kept raw with the reason, the event still decodes', () => {
    const e = decodeLog(serviceInitiated(stringToHex('{"vcpu":-1}')), 31337)
    expect(e.type).toBe('ServiceInitiated')
    if (e.type === 'ServiceInitiated') expect(e.preferences).toMatchObject({ ok: false, error: expect.stringMatching(/vcpu/) })
  })

  test.each<[string, Log]>([
    ['unknown topic', log([`0x${'33'.repeat(32)}`], '0x')],
    ['no topics', log([], '0x')],
    ['truncated data', log(event(serviceEscrowAbi, 'Withdrawn', { serviceId: 5n, operator }), '0x1234')],
    ['missing indexed topic', log(event(serviceEscrowAbi, 'Withdrawn', { serviceId: 5n, operator }).slice(0, 2), encodeAbiParameters([{ type: 'uint256' }], [1n]))],
    ['a uint8 tier of 300', log(event(serviceEscrowAbi, 'TierChanged', { serviceId: 5n }), encodeAbiParameters([{ type: 'uint256' }, { type: 'uint256' }, { type: 'uint256' }, { type: 'uint64' }], [300n, 1n, 1n, 1n]))],
    ['a uint64 of 2^64 in a topic', log([event(serviceEscrowAbi, 'ServiceTerminated', { serviceId: 5n, by: customer })[0]!, `0x${(2n ** 64n).toString(16).padStart(64, '0')}`, event(serviceEscrowAbi, 'ServiceTerminated', { serviceId: 5n, by: customer })[2]!], '0x')],
    ['an address with high bytes set', log([event(serviceEscrowAbi, 'ServiceTerminated', { serviceId: 5n, by: customer })[0]!, event(serviceEscrowAbi, 'ServiceTerminated', { serviceId: 5n, by: customer })[1]!, `0x${'ff'.repeat(32)}`], '0x')],
    ['pending log', { ...serviceInitiated('0x'), blockNumber: null, blockHash: null } as unknown as Log],
    ['removed log', { ...serviceInitiated('0x'), removed: true }],
  ])('error: %s', (_, l) => {
    let err: unknown
    try {
      decodeLog(l, 31337)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(MalformedEventError)
    expect((err as MalformedEventError).code).toBe('MALFORMED_EVENT')
    expect((err as MalformedEventError).meta).toMatchObject({ chainId: 31337, txHash: meta.transactionHash })
  })
})
