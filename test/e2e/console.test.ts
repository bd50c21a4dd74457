/**
 * The operator's console for real: a daemon serving a real anvil-backed service, its /metrics checked against the
 * shipped Grafana dashboard and alert rules, and the dashboard driven in Debian's chromium (playwright-core): the
 * service reaches active, a top-up moves paid-until over server-sent events, restart is refused without the token
 * (401) and done with it. The screenshot is kept under test-artifacts/.
 */
import { createHmac } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { processesOf, startInProcess, startStack, waitFor, type Stack } from '../helpers/stack.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const CHROMIUM = '/usr/bin/chromium'
const TOKEN = `admin-${Math.random().toString(36).slice(2)}-${Date.now()}`
const RATE = 1000n // base units per second for the basic tier (3_600_000 per hour)

/** Metric families named in a dashboard or rules file (histogram series reduced to their family). */
export function metricNamesIn(text: string): string[] {
  const names = new Set<string>()
  for (const m of text.matchAll(/(?<!\{\{\s*|\.)\b((?:bpo|chain|pricing|process|nodejs)_[a-z0-9_]+)/g)) names.add(m[1]!)
  return [...names].sort()
}

describe('e2e: console', () => {
  let stack: Stack
  let d: Awaited<ReturnType<typeof startInProcess>>
  let url: string
  // a customer's webhook receiver, checking the signature over the raw body
  const hooked: Array<{ to: string; serviceId: string; cause: string; verified: boolean }> = []
  const receiver: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      const body = JSON.parse(raw.toString('utf8')) as { to: string; serviceId: string; cause: string }
      hooked.push({ ...body, verified: req.headers['x-blueprint-signature'] === `sha256=${createHmac('sha256', 'hook-secret').update(raw).digest('hex')}` })
      res.writeHead(204).end()
    })
  })
  beforeAll(async () => {
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()))
    stack = await startStack({
      extra: {
        notifications: { webhooks: [{ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, secret: 'file:hook-secret' }] },
        http: { enabled: true, listen: '127.0.0.1:0', admin_token: 'file:admin-token' },
        // one public source with a fresh (empty) cache: its metrics exist, and nothing is fetched from the network
        pricing: { sources: ['vultr-plans'], cache_dir: 'pricing' },
      },
    })
    writeFileSync(join(stack.dataDir, 'admin-token'), `${TOKEN}\n`, { mode: 0o600 })
    writeFileSync(join(stack.dataDir, 'hook-secret'), 'hook-secret\n', { mode: 0o600 })
    mkdirSync(join(stack.dataDir, 'pricing'))
    writeFileSync(join(stack.dataDir, 'pricing', 'vultr-plans.json'), JSON.stringify({ format: 'blueprint-operator/pricing-cache', version: 1, source: 'vultr-plans', fetchedAt: Date.now(), offers: [] }))
    d = await startInProcess(stack)
    url = d.daemon.http!.url
  })
  afterAll(async () => {
    await d?.stop()
    await stack?.stop()
    await new Promise<void>((r) => receiver.close(() => r()))
  })

  test('behavior: every metric the Grafana dashboard and the alert rules name exists in a started daemon', async () => {
    const text = await (await fetch(`${url}/metrics`)).text()
    const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!))
    const has = (n: string) => families.has(n) || families.has(n.replace(/_(bucket|sum|count)$/, ''))
    for (const file of ['docs/grafana-dashboard.json', 'docs/prometheus-alerts.yml']) {
      const named = metricNamesIn(readFileSync(join(root, file), 'utf8'))
      expect(named.length, file).toBeGreaterThan(10)
      expect(named.filter((n) => !has(n)), `${file}: metrics missing from /metrics`).toEqual([])
    }
    const alerts = readFileSync(join(root, 'docs/prometheus-alerts.yml'), 'utf8')
    for (const a of ['FollowerStalled', 'TargetFailing', 'PricesStale', 'MarginBelowCost']) expect(alerts).toContain(`alert: BlueprintOperator${a}`)
  })

  test('behavior: the dashboard in a real browser — active, a top-up moves paid-until, restart needs the token', async (ctx) => {
    if (!existsSync(CHROMIUM)) return ctx.skip(`${CHROMIUM} is missing: apt-get install -y chromium`)
    const { chromium } = await import('playwright-core')
    const { chain } = stack
    const blueprintId = await stack.registerDemo()
    const { serviceId } = await chain.requestService({ blueprintId, deposit: 120n * RATE, ttlSeconds: 3600n })
    const id = String(serviceId)
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    try {
      const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } })
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(e.message))
      await page.goto(url)
      const row = page.locator(`tr[data-service="${id}"]`)
      // reaches active, live (no reload): the page was loaded before the request was even seen
      await row.locator('[data-role="state"]', { hasText: /^active$/ }).waitFor({ timeout: 60_000 })
      expect(processesOf(`bp-${chain.chainId}-${id}`, stack.operatorId)).toHaveLength(1)
      const paidUntil = () => row.locator('[data-role="paid-until"]').getAttribute('data-iso')
      const before = await waitFor('paid-until shown', paidUntil)
      expect(await row.locator('[data-role="paid"]').textContent()).toBe('0.12 USDC')

      // top-up: paid-until moves forward by what was paid, over SSE
      await chain.customer.mint(600n * RATE)
      await chain.customer.topUp(serviceId, 600n * RATE)
      const after = await waitFor('paid-until moved', async () => {
        const v = await paidUntil()
        return v && v !== before && v
      }, 30_000)
      expect(Date.parse(after) - Date.parse(before)).toBeGreaterThanOrEqual(590_000)
      await row.locator('[data-role="paid"]', { hasText: /^0\.72 USDC$/ }).waitFor({ timeout: 30_000 })

      // restart without the token: 401, nothing happens
      const restarts = () => stack.service(id)!.history.filter((h) => h.cause === 'OPERATOR_RESTART').length
      await row.locator('button[data-action="restart"]').click()
      await page.locator('#message', { hasText: '401 UNAUTHORIZED' }).waitFor()
      expect(restarts()).toBe(0)

      // with the token: restarted in place, still active
      await page.fill('#token', TOKEN)
      await row.locator('button[data-action="restart"]').click()
      await page.locator('#message', { hasText: `"serviceId":"${id}"` }).waitFor()
      await waitFor('restart recorded', () => restarts() === 1)
      expect(stack.service(id)!.state).toBe('active')
      const ep = stack.service(id)!.endpoints[0]!
      await waitFor('answers after restart', async () => (await fetch(ep)).ok)

      // the detail: timeline with the operator's restart, the decision and the spec
      await row.click()
      await page.locator('#timeline li', { hasText: 'OPERATOR_RESTART' }).waitFor()
      expect(await page.locator('#decision').textContent()).toContain('"target": "local"')
      expect(await page.locator('#spec').textContent()).toContain('"vcpu"')
      await page.locator('#targets tr[data-target="local"]').waitFor()
      await page.locator('#pricing tr[data-source="vultr-plans"]').waitFor()
      expect(errors).toEqual([])

      // every stage so far went to the webhook, signed
      await waitFor('webhooks', () => hooked.filter((h) => h.serviceId === id).length >= 4)
      expect(hooked.filter((h) => h.serviceId === id).map((h) => [h.to, h.cause, h.verified])).toEqual([
        ['requested', 'ServiceInitiated', true],
        ['provisioning', 'quoted', true],
        ['active', 'healthy', true],
        ['active', 'OPERATOR_RESTART', true],
      ])

      const dir = join(root, 'test-artifacts')
      mkdirSync(dir, { recursive: true })
      const shot = join(dir, 'console-dashboard.png')
      await page.screenshot({ path: shot, fullPage: true })
      console.log(`dashboard screenshot: ${shot}`)

      // stop from the dashboard: destroyed, earned withdrawn, the rest refunded on chain with OPERATOR_STOPPED
      page.on('dialog', (dlg) => void dlg.accept())
      await row.locator('button[data-action="stop"]').click()
      await row.locator('[data-role="state"]', { hasText: /^closed$/ }).waitFor({ timeout: 60_000 })
      expect(stack.service(id)!.reason).toBe('OPERATOR_STOPPED')
      expect((await stack.refunds(serviceId)).map((r) => r.reason)).toEqual(['OPERATOR_STOPPED'])
      expect(processesOf(`bp-${chain.chainId}-${id}`, stack.operatorId)).toHaveLength(0)
      await waitFor('closed webhook', () => hooked.some((h) => h.serviceId === id && h.to === 'closed' && h.cause === 'OPERATOR_STOPPED' && h.verified))
    } finally {
      await browser.close()
    }
  })
})
