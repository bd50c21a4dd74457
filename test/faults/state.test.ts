/**
 * Fault suite, state: the daemon's SQLite state damaged while it was down — truncated to half, a page overwritten
 * with garbage — is refused at start-up (STATE_CORRUPT, exit 1: "will not succeed on retry"), left byte for byte as
 * it was for the operator to restore, and nothing is acted on meanwhile (no second replica, no transaction). Restored
 * from the copy, the daemon carries the service on: the replica adopted, not started again, and ended once.
 */
import { copyFileSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startChild, startStack, waitFor, type Stack } from '../helpers/stack.js'
import { recordFigures } from './figures.js'

const figures = { leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 }

const DAMAGE: Record<string, (file: string) => void> = {
  'truncated to half': (file) => truncateSync(file, Math.floor(statSync(file).size / 2 / 4096) * 4096 || 1024),
  'a page overwritten with garbage': (file) => {
    const b = readFileSync(file)
    // page 2 onwards holds the tables' b-trees (page 1 is the header and the schema's root)
    for (let i = 4096; i < Math.min(b.length, 4096 * 3); i++) b[i] = (i * 131) & 0xff
    writeFileSync(file, b)
  },
}

describe('faults: truncated or corrupt state', () => {
  let stack: Stack
  let child: ReturnType<typeof startChild> | undefined
  beforeAll(async () => {
    stack = await startStack({ loopMs: 300 })
    stack.doc.log = { level: 'info' }
    ;((stack.doc.providers as Record<string, Record<string, unknown>>).local!).containers = 'off'
  })
  afterAll(async () => {
    child?.child.kill('SIGKILL')
    await stack?.stop()
    recordFigures('state', figures)
  })

  test('behavior: damaged state is refused and left as it is, nothing acted on; restored, the service carries on once', { timeout: 300_000 }, async () => {
    const { chain } = stack
    const file = join(stack.dataDir, 'state.sqlite')
    const blueprintId = await stack.registerDemo({ name: 'state-faults' })
    await chain.customer.mint(3_600_000n)
    const { serviceId } = await chain.customer.requestService({ blueprintId, operator: chain.operatorAddress, tier: 0, ttlSeconds: 3600n, deposit: 3_600_000n })
    const dep = `bp-${chain.chainId}-${serviceId}`
    child = startChild(stack)
    await waitFor('active', () => stack.service(serviceId)?.state === 'active', 60_000)
    child.child.kill('SIGTERM')
    expect(await child.exited).toBe(0)
    child = undefined
    // a clean stop checkpoints the WAL: the database file alone holds the state
    const backup = join(stack.dataDir, 'state.sqlite.backup')
    copyFileSync(file, backup)
    const blockBefore = await chain.publicClient.getBlockNumber({ cacheTime: 0 })

    for (const [what, damage] of Object.entries(DAMAGE)) {
      for (const f of [`${file}-wal`, `${file}-shm`]) rmSync(f, { force: true })
      damage(file)
      const damaged = readFileSync(file)
      const c = startChild(stack)
      const code = await Promise.race([c.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: still running\n${c.output().slice(-2000)}`)), 60_000))]).finally(() => c.child.kill('SIGKILL'))
      expect(code, `${what}:\n${c.output().slice(-2000)}`).toBe(1)
      expect(c.output(), what).toContain('STATE_CORRUPT')
      expect(readFileSync(file).equals(damaged), `${what}: the file is left as it was`).toBe(true)
      const running = processesOf(dep, stack.operatorId).length
      figures.duplicates += Math.max(0, running - 1)
      expect(running, what).toBeLessThanOrEqual(1)
      copyFileSync(backup, file)
    }
    // nothing was sent to the chain while the state could not be read
    const sent = await chain.publicClient.getBlockNumber({ cacheTime: 0 })
    const txs = await Promise.all(Array.from({ length: Number(sent - blockBefore) }, (_, i) => chain.publicClient.getBlock({ blockNumber: blockBefore + 1n + BigInt(i) })))
    const operatorTxs = (await Promise.all(txs.flatMap((b) => b.transactions.map((h) => chain.publicClient.getTransaction({ hash: h }))))).filter((t) => t.from.toLowerCase() === chain.operatorAddress.toLowerCase())
    expect(operatorTxs).toEqual([])

    // restored: the replica is adopted, not started again; the service ends once
    child = startChild(stack)
    await waitFor('active after the restore', () => stack.service(serviceId)?.state === 'active' && processesOf(dep, stack.operatorId).length === 1, 60_000)
    expect(await stack.events(serviceId, 'ServiceActivated')).toHaveLength(1)
    await chain.customer.terminate(serviceId)
    await waitFor('closed', () => stack.service(serviceId)?.state === 'closed', 60_000)
    await waitFor('no processes', () => processesOf(dep, stack.operatorId).length === 0, 30_000).catch(() => undefined)
    figures.leaked += processesOf(dep, stack.operatorId).length
    const refunds = await stack.refunds(serviceId)
    figures.double_refunds += Math.max(0, refunds.length - 1)
    const withdrawn = (await stack.events(serviceId, 'Withdrawn')).reduce((a, e) => a + (e.amount as bigint), 0n)
    const refunded = refunds.reduce((a, r) => a + r.amount, 0n)
    const settled = await waitFor('ledger = chain payouts', () => {
      const l = stack.service(serviceId)?.ledger
      return l && l.withdrawn === withdrawn.toString() && l.refunded === refunded.toString() && l
    }, 30_000).catch(() => undefined)
    if (!settled) figures.ledger_mismatch++
    if (stack.service(serviceId)!.ledger.paid !== '3600000') figures.missed_events++
    child.child.kill('SIGTERM')
    expect(await child.exited).toBe(0)
    child = undefined
    expect(figures).toEqual({ leaked: 0, duplicates: 0, double_refunds: 0, missed_events: 0, ledger_mismatch: 0 })
  })
})
