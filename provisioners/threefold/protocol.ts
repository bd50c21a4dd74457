/**
 * The typed request/response protocol between the daemon and the grid worker child (worker/gridWorker.cjs), over
 * Node's IPC channel. One request in flight per id; the worker answers every request exactly once.
 *
 * The child first sends `{ type: 'ready', pid }`. The daemon then sends `init` with the operator's mnemonic (the
 * only way the secret reaches the child: never argv, env or a log line) and after that any other op.
 */

/** What a VM per replica needs from the grid; sizes in the grid's units (MB of memory, GB of disk). */
export type GridVmSpec = {
  /** Deployment name on the grid: `<deploymentId>-r<replica>` (the contracts are found by it). */
  name: string
  nodeId: number
  cpu: number
  memoryMb: number
  /** Root filesystem, GB. */
  rootfsGb: number
  /** Data disk mounted at /data, GB (0: none). */
  diskGb: number
  /** Zero-OS flist URL (the blueprint's artifact or container image converted by the hub). */
  flist: string
  entrypoint: string
  env: Record<string, string>
  publicIp: boolean
  /** Private network of the deployment. */
  networkName: string
  /** The deployment id, stored in the deployment metadata. */
  deploymentId: string
}

export type GridInitParams = {
  mnemonic: string
  network: 'dev' | 'qa' | 'test' | 'main'
  substrateUrl: string
  relayUrl: string
  proxyUrl: string
  graphqlUrl?: string
  /** Activation service (grid_client probes it when URLs are missing); default the network's. */
  activationUrl?: string
  kycUrl?: string
  /**
   * Twin id, when known: offline building needs it; with `connect` the worker reads the mnemonic's twin from the
   * chain and answers it, and the supervisor refuses a child whose twin is not this one (GRID_TWIN_MISMATCH).
   */
  twinId?: number
  /** Connect to the grid (chain + relay) now; false only builds deployments offline. Default true. */
  connect?: boolean
}

export type GridContract = { contractId: string; kind: 'node' | 'name' | 'rent'; name?: string; nodeId?: number; deploymentName?: string }

export type GridOps = {
  ping: { params: Record<string, never>; result: { pid: number; initialized: boolean } }
  init: { params: GridInitParams; result: { twinId: number | null; connected: boolean } }
  /** Build the Zero-OS deployment of one VM with grid_client's own primitives (offline), hash and sign it. */
  buildVm: { params: GridVmSpec; result: { deployment: Record<string, unknown>; challengeHash: string; workloads: Array<{ type: string; name: string }> } }
  deployVm: { params: GridVmSpec; result: { contracts: GridContract[]; publicIp?: string; privateIp?: string } }
  /** Cancel every contract of the deployment named `name` (node, name, public IP). */
  deleteVm: { params: { name: string }; result: { cancelled: string[] } }
  cancelContracts: { params: { contractIds: string[] }; result: { cancelled: string[] } }
  listContracts: { params: Record<string, never>; result: { contracts: GridContract[] } }
  /** Free TFT of the twin's account, in TFT (decimal string). */
  balance: { params: Record<string, never>; result: { freeTft: string } }
  /** Close connections and exit 0. */
  shutdown: { params: Record<string, never>; result: { ok: true } }
}
export type GridOp = keyof GridOps

export type GridRequest<O extends GridOp = GridOp> = { id: number; op: O; params: GridOps[O]['params'] }

/** Stable error codes the worker answers with (documented in docs/errors.md). */
export type GridWorkerErrorCode =
  | 'GRID_NOT_INITIALIZED'
  | 'GRID_CONNECT_FAILED'
  | 'GRID_DEPLOY_FAILED'
  | 'GRID_CANCEL_FAILED'
  | 'GRID_BAD_REQUEST'
  | 'GRID_UNKNOWN_OP'
  | 'GRID_CLIENT_UNAVAILABLE'

export type GridResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: GridWorkerErrorCode; message: string; retryable: boolean; failover?: { kind: string; scope: string } } }

export type GridWorkerMessage = GridResponse | { type: 'ready'; pid: number }
