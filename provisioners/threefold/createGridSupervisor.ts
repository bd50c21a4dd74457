/**
 * The grid worker as a supervised child: `@threefold/grid_client` loads only through `require` and its chain and
 * relay clients install SIGINT/SIGTERM/SIGUSR handlers that call `process.exit`, so it never runs in the daemon. The
 * supervisor forks worker/gridWorker.cjs in its own process group (a terminal's Ctrl-C reaches the daemon only),
 * with a minimal environment, sends the mnemonic over IPC in `init`, times out every call, and restarts the child
 * with exponential backoff when it dies. Calls made while the child is down wait for the restart (within their
 * own timeout).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Common } from '../../core/common.js'
import { AbortedError, BaseError } from '../../core/errors.js'
import { sleep } from '../../core/retry.js'
import { GridTwinMismatchError } from './checkTwin.js'
import { GridWorkerError } from './errors.js'
import type { GridInitParams, GridOp, GridOps, GridResponse, GridWorkerMessage } from './protocol.js'

export const defaultGridWorkerPath = fileURLToPath(new URL('./worker/gridWorker.cjs', import.meta.url))

export type GridSupervisorParameters = {
  /** CommonJS worker speaking protocol.ts. Default worker/gridWorker.cjs. */
  workerPath?: string
  /** Resolved at every (re)start: the init parameters, mnemonic included (resolved from its secret reference). */
  init(): Promise<GridInitParams>
  /** Default timeout of a call, ms. Default 180 000 (a grid deployment takes minutes). */
  callTimeoutMs?: number
  /** Child start + init, ms. Default 60 000. */
  startTimeoutMs?: number
  /** First restart delay, ms; doubles per consecutive failure. Default 500. */
  minBackoffMs?: number
  /** Largest restart delay, ms. Default 30 000. */
  maxBackoffMs?: number
  /** Grace for the child to exit on close before SIGKILL, ms. Default 5 000. */
  closeGraceMs?: number
}

export type GridSupervisor = {
  call<O extends GridOp>(op: O, params: GridOps[O]['params'], o?: { timeoutMs?: number; signal?: AbortSignal }): Promise<GridOps[O]['result']>
  /** Pid of the running child, if any. */
  pid(): number | undefined
  /** Starts so far (1 + restarts). */
  starts(): number
  close(): Promise<void>
}

type Pending = { op: string; resolve(v: unknown): void; reject(e: unknown): void }

/** Env the child gets: enough to run node, nothing of the daemon's secrets. */
const childEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) if (process.env[k] !== undefined) env[k] = process.env[k]
  return env
}

export function createGridSupervisor(common: Common, p: GridSupervisorParameters): GridSupervisor {
  const log = common.logger
  const workerPath = p.workerPath ?? defaultGridWorkerPath
  const callTimeout = p.callTimeoutMs ?? 180_000
  const startTimeout = p.startTimeoutMs ?? 60_000
  const minBackoff = p.minBackoffMs ?? 500
  const maxBackoff = p.maxBackoffMs ?? 30_000
  const m = {
    restarts: common.metrics.counter('grid_worker_restarts_total', 'Grid worker child restarts after it died'),
    calls: common.metrics.counter('grid_worker_calls_total', 'Calls to the grid worker, by op and outcome'),
  }
  let child: ChildProcess | undefined
  /** Resolves when a child is up and initialized; replaced at every start. */
  let up: Promise<ChildProcess> | undefined
  let closed = false
  let failures = 0
  let started = 0
  let nextId = 1
  const pending = new Map<number, Pending>()

  const send = <O extends GridOp>(c: ChildProcess, op: O, params: GridOps[O]['params'], timeoutMs: number, signal?: AbortSignal): Promise<GridOps[O]['result']> =>
    new Promise((resolve, reject) => {
      const id = nextId++
      let timer: NodeJS.Timeout | undefined
      const onAbort = () => settle(() => reject(new AbortedError(`grid worker ${op}`)))
      const settle = (f: () => void) => {
        if (!pending.delete(id)) return
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        f()
      }
      pending.set(id, {
        op,
        resolve: (v) => settle(() => resolve(v as GridOps[O]['result'])),
        reject: (e) => settle(() => reject(e)),
      })
      timer = setTimeout(() => {
        settle(() => reject(new GridWorkerError(`grid worker ${op} timed out after ${timeoutMs} ms`, { code: 'GRID_WORKER_TIMEOUT', retryable: true, op })))
        // a child that does not answer is stuck: replace it
        log.warn({ op, timeoutMs }, 'grid worker call timed out: killing the child')
        if (child === c) {
          // calls from now on wait for the replacement (the exit handler, registered first, sets `up` to it)
          up = new Promise<ChildProcess>((res) => c.once('exit', () => res(up!)))
          up.catch(() => {})
        }
        c.kill('SIGKILL')
      }, timeoutMs)
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      c.send({ id, op, params }, (err) => {
        if (err) pending.get(id)?.reject(new GridWorkerError(`grid worker ${op}: the IPC channel is closed`, { code: 'GRID_WORKER_CRASHED', retryable: true, op, cause: err }))
      })
    })

  const onMessage = (msg: GridWorkerMessage) => {
    if ('type' in msg) return
    const pend = pending.get(msg.id)
    if (!pend) return
    if (msg.ok) pend.resolve(msg.result)
    else pend.reject(new GridWorkerError(`grid worker ${pend.op}: ${msg.error.message}`, { code: msg.error.code, retryable: msg.error.retryable, op: pend.op, failover: msg.error.failover }))
  }

  const start = (): Promise<ChildProcess> => {
    started++
    const c = fork(workerPath, [], { env: childEnv(), execArgv: [], detached: true, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' })
    child = c
    const lines = (stream: NodeJS.ReadableStream | null, level: 'debug' | 'warn') =>
      stream?.on('data', (d: Buffer) => log[level]({ pid: c.pid, out: d.toString().slice(0, 2000) }, 'grid worker output'))
    lines(c.stdout, 'debug')
    lines(c.stderr, 'warn')
    c.on('message', onMessage)
    c.once('exit', (code, sig) => {
      for (const [, pend] of pending) pend.reject(new GridWorkerError(`grid worker exited (${sig ?? code}) during ${pend.op}`, { code: 'GRID_WORKER_CRASHED', retryable: true, op: pend.op }))
      if (child === c) child = undefined
      if (closed) return
      failures++
      m.restarts.inc()
      const wait = Math.min(maxBackoff, minBackoff * 2 ** (failures - 1))
      log.warn({ code, signal: sig, failures, restartInMs: wait }, 'grid worker exited: restarting')
      up = sleep(wait, common.signal).then(() => {
        if (closed) throw new AbortedError('grid worker restart')
        return start()
      })
      up.catch(() => {})
    })
    return (async () => {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new GridWorkerError(`grid worker did not start within ${startTimeout} ms`, { code: 'GRID_WORKER_TIMEOUT', retryable: true, op: 'start' })), startTimeout)
        const onReady = (msg: GridWorkerMessage) => {
          if ('type' in msg && msg.type === 'ready') {
            clearTimeout(t)
            c.off('message', onReady)
            resolve()
          }
        }
        c.on('message', onReady)
        c.once('exit', () => {
          clearTimeout(t)
          reject(new GridWorkerError('grid worker exited before it was ready', { code: 'GRID_WORKER_CRASHED', retryable: true, op: 'start' }))
        })
      })
      try {
        const params = await p.init()
        const r = await send(c, 'init', params, startTimeout)
        // the twin the worker deploys as must be the one the daemon follows (provisioners/threefold/checkTwin.ts)
        if (params.twinId !== undefined && r.twinId !== null && r.twinId !== params.twinId) throw new GridTwinMismatchError({ configured: params.twinId, actual: r.twinId })
      } catch (err) {
        // a child that cannot initialize is replaced (the exit handler restarts it with backoff)
        c.kill('SIGKILL')
        throw err
      }
      failures = 0
      return c
    })()
  }

  const ready = async (): Promise<ChildProcess> => {
    if (closed) throw new AbortedError('grid worker (closed)')
    if (!up) {
      up = start()
      up.catch(() => {})
    }
    return up
  }

  return {
    async call(op, params, o = {}) {
      const timeoutMs = o.timeoutMs ?? callTimeout
      const deadline = Date.now() + timeoutMs
      try {
        let c: ChildProcess
        try {
          c = await Promise.race([
            ready(),
            new Promise<never>((_, reject) => setTimeout(() => reject(new GridWorkerError(`grid worker not up within ${timeoutMs} ms for ${op}`, { code: 'GRID_WORKER_TIMEOUT', retryable: true, op })), timeoutMs).unref()),
          ])
        } catch (err) {
          // a failed start leaves `up` rejected: the exit handler has already scheduled the restart
          throw err instanceof BaseError ? err : new GridWorkerError(`grid worker did not start for ${op}`, { code: 'GRID_WORKER_CRASHED', retryable: true, op, cause: err })
        }
        const r = await send(c, op, params, Math.max(1, deadline - Date.now()), o.signal)
        m.calls.inc({ op, outcome: 'ok' })
        return r
      } catch (err) {
        m.calls.inc({ op, outcome: err instanceof BaseError ? err.code : 'error' })
        throw err
      }
    },
    pid: () => child?.pid,
    starts: () => started,
    async close() {
      closed = true
      const c = child
      if (!c || c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
      await send(c, 'shutdown', {}, p.closeGraceMs ?? 5_000).catch(() => {})
      const t = setTimeout(() => c.kill('SIGKILL'), p.closeGraceMs ?? 5_000)
      await exited
      clearTimeout(t)
    },
  }
}
