/**
 * `blueprint-operator` command line. Exit codes: 0 done, 1 will not succeed on retry (bad config, bad input),
 * 64 usage (one line on stderr, never a stack), 75 try again later (a retryable start-up failure, e.g. the
 * `[http] listen` port in use). An RPC that is down at start-up is not a failure: `run` starts, answers /readyz 503
 * and waits for the node.
 */
import { createCommon } from '../core/common.js'
import { BaseError, isRetryable } from '../core/errors.js'
import { ConfigError, loadConfig } from './config.js'
import { startDaemon } from './daemon.js'
import { detectPodman } from '../provisioners/container/detect.js'
import { createPodman } from '../provisioners/container/podman.js'
import { checkIsolation, prepareDataDir, scrubSecretEnv, secretValues } from './isolation.js'

const USAGE = `usage: blueprint-operator <command>

  run [--config FILE]           run the daemon (default FILE: ./operator.toml)
  config check FILE             validate a configuration file; prints every problem with its path
  status [--url URL] [--config FILE]
                                the running daemon: chain, services (state, paid until, money), targets
  services show|restart|stop ID [--url URL] [--config FILE]
                                one service's timeline, decision and money; restart or stop it (needs the
                                admin token: $BPO_ADMIN_TOKEN or [http] admin_token)
  pricing refresh [SOURCE...]   refresh price sources into the cache now
  pricing import SOURCE FILE    fill a source's cache from a saved file (offline)
  store import [--from FILE] [--config FILE]
                                copy the embedded state (<data_dir>/state.sqlite, or a state.json) into the
                                empty PostgreSQL of [store] url (stop the daemon first)
  dev                           local anvil chain + contracts + demo blueprint + demo customer + the daemon
  demo <top-up|terminate|tier|status> ...
                                act as the dev setup's demo customer (see README)
  pricing parse <format> <file> parse a price source's file into offers (JSON lines)
  quote --cpu N --memory GiB [--gpu MODEL:N] [--region R]... [--spot] [--max-usd X] [--top N] [--catalog DIR] [--config FILE [--explain]]
                                cheapest offers from the cached catalog

run: SIGTERM or SIGINT drains and exits 0. An unreachable RPC at start-up is waited for, not an error: the daemon
starts, /readyz answers 503 until the chain has been read once, and it retries the node for as long as it runs.
Local replicas must not run as the daemon's uid: set [providers.local] workload_uids (root daemon) or opt in with
unsafe_workloads_share_daemon_uid = true.

exit codes: 0 done; 1 will not succeed on retry (invalid configuration, refused isolation, a key file others can
read); 64 usage; 75 try again later (a retryable start-up failure, e.g. http.listen in use).
`

export const EXIT = { ok: 0, fatal: 1, usage: 64, retry: 75 } as const

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name)
  if (i >= 0) return argv[i + 1]
  const eq = argv.find((a) => a.startsWith(`${name}=`))
  return eq?.slice(name.length + 1)
}

/** `config check FILE`; with the local target enabled, also says whether container sources can run here (podman). */
export async function configCheck(file: string | undefined, io: Io): Promise<number> {
  if (!file) {
    io.stderr.write('error: config check needs a FILE (blueprint-operator config check operator.toml)\n')
    return EXIT.usage
  }
  try {
    const c = loadConfig(file)
    io.stdout.write(`${file}: ok (operator ${c.operator.id}, chain ${c.chain.chainId}, ${[c.providers.local?.enabled ? 'local' : undefined, ...(c.providers.ssh?.hosts ?? []).map((h) => `ssh:${h.name}`), ...(c.providers.kubernetes?.clusters ?? []).map((k) => `k8s:${k.name}`)].filter(Boolean).join(', ') || 'no targets'})\n`)
    if (c.providers.local?.enabled) {
      // the same start-up check the daemon runs (a real container, nothing pulled); informative, never an error
      const cap = c.providers.local.containers === 'off' ? { ok: false as const, reason: 'containers are off in the configuration' } : await detectPodman(createPodman(), { timeoutMs: 30_000 })
      io.stdout.write(cap.ok ? `local: container sources: yes (podman ${cap.version}${cap.runArgs.length ? `, ${cap.runArgs.join(' ')}` : ''})\n` : `local: container sources: no (${cap.reason})\n`)
    }
    return EXIT.ok
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.shortMessage}\n${err.problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n')}\n`)
      return EXIT.fatal
    }
    throw err
  }
}

/** `run --config FILE`: runs until SIGTERM/SIGINT, then drains within the grace period. */
export async function run(file: string, io: Io): Promise<number> {
  let config
  try {
    config = loadConfig(file)
  } catch (err) {
    if (err instanceof ConfigError) return await configCheck(file, io)
    throw err
  }
  // no workload may reach the daemon's secrets: refuse a local target whose replicas would share the daemon's uid
  const iso = checkIsolation(config, { uid: process.getuid?.() ?? -1, configFile: file })
  if (iso.problems.length) {
    const err = new ConfigError(file, iso.problems)
    io.stderr.write(`${err.shortMessage}\n${err.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}\n`)
    return EXIT.fatal
  }
  prepareDataDir(config)
  const secrets = secretValues(config)
  // what env: references pointed at leaves the environment: nothing spawned from here on can inherit it
  const scrubbed = scrubSecretEnv(secrets)
  const { common, shutdown } = createCommon({ level: config.log.level, secrets })
  for (const w of iso.warnings) common.logger.warn(w)
  if (scrubbed.length) common.logger.debug({ variables: scrubbed }, 'secret variables removed from the environment')
  let daemon
  try {
    daemon = await startDaemon({ config, common })
  } catch (err) {
    common.logger.fatal({ err }, 'start-up failed')
    io.stderr.write(`${common.redact ? common.redact(err instanceof Error ? err.message : String(err)) : String(err)}\n`)
    await shutdown(1000)
    return isRetryable(err) ? EXIT.retry : EXIT.fatal
  }
  return new Promise<number>((resolve) => {
    let signals = 0
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) {
        common.logger.warn({ signal: sig }, 'second signal: exiting without waiting')
        process.exit(130)
      }
      common.logger.info({ signal: sig }, 'shutting down')
      void (async () => {
        await daemon.stop()
        await shutdown(20_000)
        resolve(EXIT.ok)
      })()
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}

export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [cmd, sub] = argv
  const usage = (msg: string) => {
    io.stderr.write(`error: ${msg} (blueprint-operator help)\n`)
    return EXIT.usage
  }
  try {
    switch (cmd) {
      case 'run':
        return await run(flag(argv, '--config') ?? 'operator.toml', io)
      case 'config':
        if (sub === 'check') return await configCheck(argv[2], io)
        return usage(`unknown command: config ${sub ?? ''}`.trim())
      case 'store':
        if (sub === 'import') {
          // copy one daemon's state (SQLite, or an older state.json) into the PostgreSQL of [store] url
          const file = flag(argv, '--config') ?? 'operator.toml'
          const config = loadConfig(file)
          const { importStore } = await import('./store/importCommand.js')
          const { common, shutdown } = createCommon({ level: 'warn' })
          try {
            const from = flag(argv, '--from')
            const r = await importStore(common, { owner: { operatorId: config.operator.id, chainId: config.chain.chainId }, dataDir: config.operator.dataDir, url: config.store.url, ...(from && { from }) })
            io.stdout.write(`imported ${r.services} services and ${r.events} event ids from ${r.from} into ${r.to}\n`)
            return EXIT.ok
          } finally {
            await shutdown(1000)
          }
        }
        return usage(`unknown command: store ${sub ?? ''}`.trim())
      case 'status':
      case 'services': {
        const { daemonTarget, servicesCommand, statusCommand } = await import('./consoleCli.js')
        const target = daemonTarget({ url: flag(argv, '--url'), config: flag(argv, '--config') })
        const pos = argv.filter((a, i) => !a.startsWith('--') && !['--url', '--config'].includes(argv[i - 1] ?? ''))
        if (cmd === 'status') return await statusCommand(target, io)
        return await servicesCommand(pos[1], pos[2], target, io)
      }
      case 'dev': {
        const { runDev } = await import('./dev.js')
        return await runDev(argv.slice(1), io)
      }
      case 'demo': {
        const { demoCli } = await import('./demo.js')
        return await demoCli(argv.slice(1), io)
      }
      case 'pricing':
      case 'quote': {
        const file = flag(argv, '--config')
        if (file) {
          // the operator's cache directory and settings, not the defaults
          const { pricingCliWith } = await import('../pricing/cli.js')
          const { pricingConfigOf } = await import('./pricing.js')
          const rest = argv.filter((a, i) => a !== '--config' && argv[i - 1] !== '--config' && !a.startsWith('--config='))
          if (cmd === 'quote' && rest.includes('--explain')) {
            // the decision the daemon would make: the operator's targets and enabled clouds, with rejected classes
            const { explainQuote } = await import('./explain.js')
            return await explainQuote(rest.slice(1), io, loadConfig(file))
          }
          return await pricingCliWith(rest, io, pricingConfigOf(loadConfig(file)))
        }
        const { pricingCli } = await import('../pricing/cli.js')
        return await pricingCli(argv, io)
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        ;(cmd ? io.stdout : io.stderr).write(USAGE)
        return cmd ? EXIT.ok : EXIT.usage
    }
    return usage(`unknown command: ${argv.join(' ')}`)
  } catch (err) {
    if (err instanceof BaseError && err.code === 'CLI_USAGE') return usage(err.shortMessage)
    if (err instanceof ConfigError) {
      io.stderr.write(`${err.shortMessage}\n${err.problems.map((p) => `  ${p.path || '(top level)'}: ${p.message}`).join('\n')}\n`)
      return EXIT.fatal
    }
    // a known error is its message; anything else one line too (the stack only with BPO_DEBUG=1)
    const text = err instanceof BaseError ? err.message : process.env.BPO_DEBUG ? ((err as Error).stack ?? String(err)) : `error: ${(err as Error)?.message ?? String(err)}`
    io.stderr.write(`${text}\n`)
    return isRetryable(err) ? EXIT.retry : EXIT.fatal
  }
}
