/**
 * Turn one block's raw TFChain events (section, method, data as `toJSON()`) into the twin's normalized events and
 * the watcher's next state. Pure: the watcher and the tests feed it what the chain returned.
 *
 * Spec 61 quirks handled here: cancelling a name contract emits `NameContractCanceled(id)` and also
 * `NodeContractCanceled(id, 0, 0)` — one cancellation is delivered; `NameContractCanceled` and `ContractBilled`
 * carry no twin, so they are matched against the contracts the watcher knows.
 */
import type { TfchainCursor } from './cursor.js'
import type { TfchainContract, TfchainContractState, TfchainEvent, TfchainEventPosition } from './events.js'

/** One record of `system.events` as JSON. */
export type RawTfchainEvent = { section: string; method: string; data: unknown[] }

export type NormalizeEventsParameters = {
  blockNumber: number
  blockHash: string
  /** The block's `timestamp.now`, unix ms. */
  at: number
  /** A node hosting a contract is down after this long without `NodeUptimeReported`, ms. */
  nodeDownAfterMs: number
}

type Obj = Record<string, unknown>
const obj = (x: unknown): Obj => (x && typeof x === 'object' ? (x as Obj) : {})
const num = (x: unknown): number => (typeof x === 'number' ? x : Number(typeof x === 'string' && x.startsWith('0x') ? BigInt(x) : x))
const idOf = (x: unknown): string => BigInt(x as string | number).toString()
const hexToText = (x: unknown): string => {
  if (typeof x !== 'string') return ''
  if (!x.startsWith('0x')) return x
  return Buffer.from(x.slice(2), 'hex').toString('utf8')
}
const lower = (k: string) => k.charAt(0).toLowerCase() + k.slice(1)
const field = (o: Obj, snake: string): unknown => o[snake] ?? o[snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())]

/** `{ deploymentName }` from a node contract's deployment data (JSON with a `name`), or nothing. */
function deploymentNameOf(data: unknown): { deploymentName?: string } {
  try {
    const name = (JSON.parse(hexToText(data)) as { name?: unknown }).name
    return typeof name === 'string' && name ? { deploymentName: name } : {}
  } catch {
    return {}
  }
}

/** A `Contract` struct (snake_case from a types file, camelCase from v14 metadata) as the watcher keeps it. */
export function contractFromChain(json: unknown): { contract: TfchainContract; twinId: number; state: TfchainContractState } {
  const c = obj(json)
  const type = obj(field(c, 'contract_type'))
  const [variant, body] = Object.entries(type)[0] ?? ['', {}]
  const b = obj(body)
  const contractId = idOf(field(c, 'contract_id'))
  const state = obj(c.state)
  const stateKey = lower(Object.keys(state)[0] ?? (typeof c.state === 'string' ? c.state : 'created'))
  const st: TfchainContractState = stateKey === 'gracePeriod' ? 'grace-period' : stateKey === 'deleted' ? 'deleted' : 'created'
  const twinId = num(field(c, 'twin_id'))
  switch (lower(variant)) {
    case 'nodeContract':
      return {
        twinId,
        state: st,
        contract: {
          contractId,
          kind: 'node',
          nodeId: num(field(b, 'node_id')),
          publicIps: num(field(b, 'public_ips') ?? 0),
          deploymentHash: String(field(b, 'deployment_hash') ?? ''),
          ...deploymentNameOf(field(b, 'deployment_data')),
        },
      }
    case 'nameContract':
      return { twinId, state: st, contract: { contractId, kind: 'name', name: hexToText(b.name) } }
    default:
      return { twinId, state: st, contract: { contractId, kind: 'rent', nodeId: num(field(b, 'node_id')) } }
  }
}

/** Normalize one block; returns the events and the state after the block (the input is not modified). */
export function normalizeEvents(raw: readonly RawTfchainEvent[], prev: TfchainCursor, p: NormalizeEventsParameters): { events: TfchainEvent[]; next: TfchainCursor } {
  const contracts: Record<string, TfchainContract> = { ...prev.contracts }
  const nodes: TfchainCursor['nodes'] = Object.fromEntries(Object.entries(prev.nodes).map(([k, v]) => [k, { ...v }]))
  const events: TfchainEvent[] = []
  const cancelledHere = new Map<string, TfchainContract>()
  const pos = (eventIndex: number): TfchainEventPosition => ({ blockNumber: p.blockNumber, blockHash: p.blockHash, eventIndex, at: p.at })
  const watchNode = (nodeId: number | undefined) => {
    if (nodeId === undefined || nodeId === 0) return
    nodes[nodeId] ??= { lastUptimeAt: p.at, down: false }
  }
  const cancel = (i: number, id: string) => {
    if (cancelledHere.has(id)) return
    const c = contracts[id]
    if (!c) return
    cancelledHere.set(id, c)
    delete contracts[id]
    events.push({
      ...pos(i),
      type: 'contract-cancelled',
      contractId: id,
      kind: c.kind,
      ...(c.nodeId !== undefined && { nodeId: c.nodeId }),
      ...(c.name !== undefined && { name: c.name }),
      ...(c.deploymentName !== undefined && { deploymentName: c.deploymentName }),
    })
  }

  raw.forEach((e, i) => {
    const d = e.data
    if (e.section === 'smartContractModule') {
      switch (e.method) {
        case 'ContractCreated':
        case 'ContractUpdated': {
          const { contract, twinId, state } = contractFromChain(d[0])
          if (twinId !== prev.twinId) return
          if (e.method === 'ContractCreated') {
            contracts[contract.contractId] = contract
            watchNode(contract.nodeId)
            events.push({ ...pos(i), type: 'contract-created', contract })
          } else if (contracts[contract.contractId]) {
            contracts[contract.contractId] = contract
            events.push({ ...pos(i), type: 'contract-updated', contract, state })
          }
          return
        }
        case 'NodeContractCanceled':
        case 'NameContractCanceled':
        case 'RentContractCanceled':
          return cancel(i, idOf(d[0]))
        case 'ContractBilled': {
          const bill = obj(d[0])
          const id = idOf(field(bill, 'contract_id'))
          const known = contracts[id] ?? cancelledHere.get(id)
          if (!known) return
          events.push({
            ...pos(i),
            type: 'contract-billed',
            contractId: id,
            amountBilled: BigInt(field(bill, 'amount_billed') as string | number),
            billedAt: num(bill.timestamp) * 1000,
            discountLevel: String(field(bill, 'discount_level')),
            ...(known.deploymentName !== undefined && { deploymentName: known.deploymentName }),
          })
          return
        }
        case 'ContractGracePeriodStarted':
        case 'ContractGracePeriodEnded': {
          const id = idOf(d[0])
          if (!contracts[id] && num(d[2]) !== prev.twinId) return
          if (e.method === 'ContractGracePeriodStarted') events.push({ ...pos(i), type: 'grace-period-started', contractId: id, nodeId: num(d[1]), sinceBlock: num(d[3]) })
          else events.push({ ...pos(i), type: 'grace-period-ended', contractId: id, nodeId: num(d[1]) })
          return
        }
      }
    } else if (e.section === 'tfgridModule') {
      const n = nodes[num(d[0])]
      if (!n) return
      if (e.method === 'NodeUptimeReported') {
        n.lastUptimeAt = num(d[1]) * 1000
        if (n.down) {
          n.down = false
          events.push({ ...pos(i), type: 'node-up', nodeId: num(d[0]) })
        }
      } else if (e.method === 'NodeDeleted' && !n.down) {
        n.down = true
        events.push({ ...pos(i), type: 'node-down', nodeId: num(d[0]), reason: 'deleted', lastUptimeAt: n.lastUptimeAt })
      }
    }
  })

  // nodes no live contract uses are forgotten; the others are checked for missed uptime reports
  let extra = raw.length
  const used = new Set(Object.values(contracts).flatMap((c) => (c.nodeId ? [String(c.nodeId)] : [])))
  for (const k of Object.keys(nodes)) {
    if (!used.has(k)) {
      delete nodes[k]
      continue
    }
    const n = nodes[k]!
    if (!n.down && p.at - n.lastUptimeAt > p.nodeDownAfterMs) {
      n.down = true
      events.push({ ...pos(extra++), type: 'node-down', nodeId: Number(k), reason: 'uptime-stale', lastUptimeAt: n.lastUptimeAt })
    }
  }
  return { events, next: { ...prev, blockNumber: p.blockNumber, blockHash: p.blockHash, contracts, nodes } }
}
