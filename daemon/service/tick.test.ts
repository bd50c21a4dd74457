import { describe, expect, test } from 'vitest'
import { windowed } from './tick.js'

const ids = (n: number) => Array.from({ length: n }, (_, i) => String(i))

describe('windowed (a reconcile pass)', () => {
  test('behavior: never more than the window runs at once, and every id runs once', async () => {
    let running = 0
    let most = 0
    const ran: string[] = []
    await windowed(ids(200), async (id) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 1 + (Number(id) % 3)))
      ran.push(id)
      running--
    }, [], 16, 10_000)
    expect(most).toBe(16)
    expect(ran.toSorted((a, b) => Number(a) - Number(b))).toEqual(ids(200))
  })

  test('behavior: a step that never ends gives its slot up; the others all run, and the pass waits for it to settle', async () => {
    let release!: () => void
    const stuck = new Promise<void>((r) => (release = r))
    const done: string[] = []
    let settled = false
    const pass = windowed(ids(10), async (id) => {
      if (id === '0') return stuck
      done.push(id)
    }, [], 1, 50).then(() => (settled = true))
    // one slot: only the slot timeout lets ids 1..9 past the stuck id 0
    while (done.length < 9) await new Promise((r) => setTimeout(r, 10))
    expect(settled).toBe(false)
    release()
    await pass
    expect(done).toHaveLength(9)
  })
})
