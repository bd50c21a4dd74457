/**
 * One cluster: a kubeconfig loaded with the real `@kubernetes/client-node` client, its typed APIs, and `call`, which
 * gives every request a timeout and an AbortSignal (through a per-call middleware that sets the request's signal) and
 * classifies what it throws.
 */
import {
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  KubeConfig,
  Observable,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node'
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https'
import type { Common } from '../../core/common.js'
import { TimeoutError } from '../../core/errors.js'
import { withTimeout } from '../../core/retry.js'
import { ConfigError } from '../../config/load.js'
import { classifyKubernetesError } from './classifyError.js'

export type ClusterParameters = {
  name: string
  kubeconfigPath: string
  /** Context in the kubeconfig; its current-context when absent. */
  context?: string
  region?: string
  storageClass?: string
}

export type CallParameters = {
  signal?: AbortSignal
  timeoutMs: number
  /** Content-Type to send instead of the generated client's choice (patch kinds). */
  contentType?: string
  /**
   * True when `timeoutMs` is the rest of the caller's own deadline rather than the per-request limit: running out
   * is then the caller's TimeoutError, not a sign of an unreachable API server.
   */
  deadlineBound?: boolean
}

export type ClusterClient = {
  name: string
  region: string | undefined
  storageClass: string | undefined
  /** "cluster <name> (<server>)", for messages. */
  label: string
  core: CoreV1Api
  apps: AppsV1Api
  autoscaling: AutoscalingV2Api
  /** Release the cluster's pooled connections. */
  close(): void
  /** Run one API request with a timeout and signal; throws classified BaseErrors. */
  call<T>(what: string, fn: (options: ConfigurationOptions) => Promise<T>, p: CallParameters): Promise<T>
}

/** Load a cluster's kubeconfig and build its clients; throws ConfigError when the kubeconfig is unusable. */
export function createClusterClient(common: Common, c: ClusterParameters): ClusterClient {
  const kc = new KubeConfig()
  try {
    kc.loadFromFile(c.kubeconfigPath)
    if (c.context) {
      if (!kc.getContextObject(c.context)) throw new Error(`context ${JSON.stringify(c.context)} not found`)
      kc.setCurrentContext(c.context)
    }
    const cluster = kc.getCurrentCluster()
    if (!cluster) throw new Error('no current cluster in the kubeconfig')
    // the client refuses plain http at request time; say so at start-up instead
    if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) throw new Error(`server ${cluster.server} is plain http: set insecure-skip-tls-verify: true or use https`)
  } catch (err) {
    throw new ConfigError(c.kubeconfigPath, [
      { path: `kubernetes.clusters.${c.name}.kubeconfig`, message: (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? 'unreadable' },
    ])
  }
  const server = kc.getCurrentCluster()!.server
  const label = `kubernetes cluster ${c.name} (${server})`
  const log = common.logger
  // The client builds a new agent (so a new TLS handshake) for every request; one keep-alive agent with the same
  // options per cluster serves them all. Proxy agents (proxy-url) are left alone.
  let shared: HttpAgent | undefined
  const reuse = (built: HttpAgent | undefined): HttpAgent | undefined => {
    if (!built || (built.constructor !== HttpsAgent && built.constructor !== HttpAgent)) return built
    if (!shared) {
      const options = { ...(built as unknown as { options: HttpsAgentOptions }).options, keepAlive: true, maxSockets: 8 }
      shared = built.constructor === HttpsAgent ? new HttpsAgent(options) : new HttpAgent(options)
    }
    if (built !== shared) built.destroy()
    return shared
  }
  return {
    name: c.name,
    region: c.region,
    storageClass: c.storageClass,
    label,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    autoscaling: kc.makeApiClient(AutoscalingV2Api),
    async call(what, fn, p) {
      try {
        return await withTimeout(
          `${label}: ${what}`,
          p.timeoutMs,
          (signal) => {
            const mw: ObservableMiddleware = {
              pre: (ctx: RequestContext) => {
                ctx.setSignal(signal)
                const agent = reuse(ctx.getAgent())
                if (agent) ctx.setAgent(agent)
                if (p.contentType) ctx.setHeaderParam('Content-Type', p.contentType)
                return new Observable(Promise.resolve(ctx))
              },
              post: (rsp: ResponseContext) => new Observable(Promise.resolve(rsp)),
            }
            return fn({ middleware: [mw], middlewareMergeStrategy: 'append' })
          },
          p.signal,
        )
      } catch (err) {
        if (p.deadlineBound && err instanceof TimeoutError) throw err
        const e = classifyKubernetesError(err, label, what)
        log.debug({ cluster: c.name, call: what, code: e.code, httpStatus: e.meta.httpStatus }, 'kubernetes call failed')
        throw e
      }
    },
    close() {
      shared?.destroy()
      shared = undefined
    },
  }
}
