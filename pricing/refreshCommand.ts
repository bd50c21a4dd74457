/**
 * `pricing refresh [SOURCE...]`: refresh price sources into the cache now (every enabled one, or those named),
 * with progress on a terminal (one updating line) and plain lines otherwise. Exit 0 when every source refreshed.
 */
import { createCommon } from '../core/common.js'
import { createCatalog, type RefreshOutcome } from './catalog.js'
import { SourceIds, type NetworkSourceId, type PricingConfig } from './config.js'
import { PricingUsageError } from './errors.js'

type Io = { stdout: NodeJS.WritableStream & { isTTY?: boolean }; stderr: NodeJS.WritableStream }

export async function refreshCommand(names: string[], config: PricingConfig, io: Io): Promise<number> {
  for (const n of names) if (!(SourceIds as readonly string[]).includes(n)) throw new PricingUsageError(`unknown source ${JSON.stringify(n)}; one of ${SourceIds.join(', ')}`)
  const cfg: PricingConfig = structuredClone(config)
  // named sources are refreshed even when the configuration leaves them off
  for (const n of names) cfg.sources[n as NetworkSourceId].enabled = true
  const ids = names.length ? (names as NetworkSourceId[]) : SourceIds.filter((id) => cfg.sources[id].enabled)
  if (!ids.length) throw new PricingUsageError('no source is enabled: name one (pricing refresh SOURCE) or set [pricing] sources')
  const { common, shutdown } = createCommon({ level: 'silent' })
  const catalog = createCatalog(common, cfg, { refreshOnStart: false })
  const tty = Boolean(io.stdout.isTTY)
  const t0 = Date.now()
  let done = 0
  const line = (text: string) => (tty ? io.stdout.write(`\r\x1b[K${text}`) : undefined)
  const show = (o: RefreshOutcome, ms: number) => {
    done++
    const text = o.ok ? `${o.source}: ok, ${o.offers} offers (${(ms / 1000).toFixed(1)} s)` : `${o.source}: failed (${(ms / 1000).toFixed(1)} s): ${o.error}`
    if (tty) io.stdout.write(`\r\x1b[K${text}\n`)
    else io.stdout.write(`${text}\n`)
    line(`refreshing ${done}/${ids.length} sources…`)
  }
  try {
    await catalog.start() // loads the cache (for the shrink check); nothing refreshes on its own
    line(`refreshing 0/${ids.length} sources…`)
    const outcomes = await Promise.all(
      ids.map(async (id) => {
        const s = Date.now()
        const [o] = await catalog.refresh(id)
        show(o!, Date.now() - s)
        return o!
      }),
    )
    const failed = outcomes.filter((o) => !o.ok)
    line('')
    io.stdout.write(`${outcomes.length - failed.length}/${outcomes.length} sources refreshed into ${cfg.cacheDir} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
    return failed.length ? 1 : 0
  } finally {
    await catalog.close()
    await shutdown(1000)
  }
}
