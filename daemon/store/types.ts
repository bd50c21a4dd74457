/**
 * The state store's interface (what the rest of the daemon sees) and the engine interface the group commit runs on.
 */
import type { State } from '../state.js'
import type { Changes } from './draft.js'

export type Store = {
  /** The current state (read-only view; change it through `update`). */
  read(): Readonly<State>
  /**
   * Apply `fn` to a copy-on-write draft of the state and persist what it changed; the in-memory state changes only
   * once the write succeeded. `fn` may run more than once (it is replayed when another daemon wrote the same rows
   * first), so it must only change the draft.
   */
  update<T>(fn: (draft: State) => T): Promise<T>
  // note: the draft's records are copy-on-write views (proxies): copy one with JSON, structuredClone refuses proxies
  /**
   * Call `fn` with the ids of the services each commit changed (this daemon's group commits and rows other daemons
   * committed, as they enter the read model); returns the unsubscribe. `fn` runs on the commit path: keep it short.
   */
  onCommitted(fn: (serviceIds: readonly string[]) => void): () => void
  /** Which engine holds the state: `sqlite` (embedded) or `postgres` (shared). */
  readonly engine: 'sqlite' | 'postgres'
  /** Work sharing between daemons on one PostgreSQL; absent for the embedded store (one daemon does everything). */
  readonly coordination?: Coordination
  close(): Promise<void>
}

/** Several daemons, one operator, one PostgreSQL: who follows the chain, who acts on which service. */
export type Coordination = {
  /** This daemon's identity in the lease table. */
  readonly owner: string
  /** True while this daemon holds the leader lock (follows the chain, writes the cursor and processed ids). */
  isLeader(): boolean
  /** True while this daemon holds the lease of `serviceId` (only the holder acts on a service). */
  holds(serviceId: string): boolean
  /** Called when leadership is won or lost. */
  onLeadership(fn: (leader: boolean) => void): void
  /** Called with the ids of services whose lease this daemon just acquired (adopted). */
  onAcquired(fn: (serviceIds: string[]) => void): void
  /** Run `fn` alone among the daemons of this operator (their transactions share one account, so one nonce). */
  exclusiveTx<T>(fn: () => Promise<T>): Promise<T>
}

/** Rows another daemon wrote first. */
export type Conflicts = { services: string[]; processed: string[] }

/** What an engine does for the group commit. */
export type Engine = {
  readonly name: 'sqlite' | 'postgres'
  /** Every row, as the committed state. */
  load(): Promise<State>
  /**
   * Persist `changes` in ONE transaction. Returns the rows another daemon changed first (and writes nothing then);
   * undefined means committed.
   */
  write(changes: Changes, committed: Readonly<State>): Promise<Conflicts | undefined>
  /** The rows of `ids` as committed now (after a conflict, or a refresh), as changes to lay over the read model. */
  reload(ids: Conflicts): Promise<Changes>
  /** Present on an engine several daemons share. */
  coordination?: Coordination
  close(): Promise<void>
}
