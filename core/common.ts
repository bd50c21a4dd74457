/**
 * Common: what every factory receives first — a logger bound to its module, the metrics registry, and the
 * shutdown signal. No module-level singletons.
 */
import { setMaxListeners } from 'node:events'
import { pino, type Logger, type DestinationStream } from 'pino'
import { createMetrics, type Metrics } from './metrics.js'
import { createRedactor, type Redactor } from './redact.js'

export type { Logger }

export type Common = {
  logger: Logger
  metrics: Metrics
  /** Aborted when the daemon begins to shut down. */
  signal: AbortSignal
  /** Register a close callback; callbacks run in reverse order of registration on shutdown. */
  onShutdown(name: string, close: () => Promise<void> | void): void
  /** A copy with a child logger bound to `module`. */
  child(module: string): Common
  /** Redacts URLs and the configuration's secret values from text bound for the outside (API, metrics). */
  redact?: Redactor
}

/** Paths whose values never reach a log line. */
export const redactPaths = [
  'privateKey',
  '*.privateKey',
  'password',
  '*.password',
  'apiToken',
  '*.apiToken',
  'secret',
  '*.secret',
  'apiKey',
  '*.apiKey',
  'mnemonic',
  '*.mnemonic',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'config.chain.privateKey',
]

export type CreateCommonParameters = {
  level?: string
  destination?: DestinationStream
  /** Pretty one-line output for humans (dev). */
  pretty?: boolean
  signal?: AbortSignal
  /** Secret values (resolved keys, URLs given by reference) masked in every log line, wherever they appear. */
  secrets?: readonly string[]
}

/**
 * The log stream every line goes through: every URL in it is redacted (userinfo, query values, key-like path
 * segments) and every known secret value masked, whatever object, error or library message carried it.
 */
export function redactingDestination(dest: DestinationStream, redact: Redactor): DestinationStream {
  const d = dest as DestinationStream & { flush?: (cb?: () => void) => void; flushSync?: () => void; end?: () => void }
  const out: DestinationStream & Record<string, unknown> = {
    write: (line: string) => d.write(redact(line)),
  }
  if (d.flush) out.flush = (cb?: () => void) => d.flush!(cb)
  if (d.flushSync) out.flushSync = () => d.flushSync!()
  if (d.end) out.end = () => d.end!()
  return out
}

export type Shutdown = {
  common: Common
  /** Abort the signal and run close callbacks in reverse order within `graceMs`. */
  shutdown(graceMs?: number): Promise<void>
}

export function createCommon(p: CreateCommonParameters = {}): Shutdown {
  const controller = new AbortController()
  // every I/O call of every part listens to this one signal
  setMaxListeners(0, controller.signal)
  if (p.signal) p.signal.addEventListener('abort', () => controller.abort(p.signal!.reason), { once: true })
  const redact = createRedactor(p.secrets ?? [])
  const logger = pino(
    {
      level: p.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: redactPaths, censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    redactingDestination(p.destination ?? pino.destination({ fd: 1, sync: false }), redact),
  )
  const closers: { name: string; close: () => Promise<void> | void }[] = []
  const metrics = createMetrics()
  const make = (log: Logger): Common => ({
    logger: log,
    metrics,
    signal: controller.signal,
    onShutdown: (name, close) => void closers.push({ name, close }),
    child: (module) => make(log.child({ module })),
    redact,
  })
  const common = make(logger)
  let done: Promise<void> | undefined
  return {
    common,
    shutdown(graceMs = 10_000) {
      done ??= (async () => {
        controller.abort(new Error('shutdown'))
        const deadline = Date.now() + graceMs
        for (const c of closers.reverse()) {
          const left = Math.max(0, deadline - Date.now())
          try {
            await Promise.race([
              Promise.resolve().then(c.close),
              new Promise((_, rej) => setTimeout(() => rej(new Error(`close of ${c.name} exceeded the grace period`)), left).unref()),
            ])
          } catch (err) {
            logger.warn({ err, part: c.name }, 'close failed')
          }
        }
        logger.flush?.()
      })()
      return done
    },
  }
}

/** A Common for tests: silent logger unless LOG_LEVEL is set. */
export function createTestCommon(level = process.env.LOG_LEVEL ?? 'silent'): Shutdown {
  return createCommon({ level, destination: pino.destination({ fd: 2, sync: true }) })
}
