/**
 * A durable outbox: one append-only JSONL file. An entry line `{"id","hook","body","createdAt"}` is written and
 * fsynced before delivery is attempted; a marker line `{"delivered":id}` (or `{"dropped":id}`) once it is done. On
 * open, every entry without a marker is pending again (a restart resumes delivery); a file whose entries are all
 * done is compacted (rewritten atomically with only the pending ones). Independent of the state store.
 */
import { mkdirSync, openSync, readFileSync, renameSync, fsyncSync, closeSync, writeSync, existsSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'

export type OutboxEntry = { id: string; hook: string; body: string; createdAt: string }

export type Outbox = {
  /** Entries not delivered yet, oldest first. */
  pending(): OutboxEntry[]
  /** Append and fsync an entry. */
  append(e: OutboxEntry): Promise<void>
  /** Record an entry as delivered (or dropped for good). */
  done(id: string, how: 'delivered' | 'dropped'): Promise<void>
  close(): Promise<void>
}

export function openOutbox(file: string): Outbox {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const pending = new Map<string, OutboxEntry>()
  let lines = 0
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue
      let x: Partial<OutboxEntry> & { delivered?: string; dropped?: string }
      try {
        x = JSON.parse(line) as typeof x
      } catch {
        continue // a torn last line from a crash mid-append: its entry was never acknowledged
      }
      lines++
      if (x.delivered || x.dropped) pending.delete((x.delivered ?? x.dropped)!)
      else if (x.id && x.hook && typeof x.body === 'string') pending.set(x.id, x as OutboxEntry)
    }
    // compact: keep only what is still pending
    if (lines > pending.size) {
      const tmp = `${file}.tmp`
      const fd = openSync(tmp, 'w', 0o600)
      try {
        for (const e of pending.values()) writeSync(fd, `${JSON.stringify(e)}\n`)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(tmp, file)
    }
  }
  let fh: Promise<FileHandle> | undefined
  let chain: Promise<unknown> = Promise.resolve()
  const write = (line: string) => {
    const run = chain.then(async () => {
      fh ??= open(file, 'a', 0o600)
      const h = await fh
      await h.appendFile(`${line}\n`)
      await h.sync()
    })
    chain = run.catch(() => undefined)
    return run
  }
  return {
    pending: () => [...pending.values()],
    async append(e) {
      await write(JSON.stringify(e))
      pending.set(e.id, e)
    },
    async done(id, how) {
      pending.delete(id)
      await write(JSON.stringify({ [how]: id, at: new Date().toISOString() }))
    },
    async close() {
      await chain
      if (fh) await (await fh).close()
      fh = undefined
    },
  }
}
