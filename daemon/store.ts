/**
 * The state store (see daemon/store/): SQLite embedded or PostgreSQL shared, with copy-on-write drafts and group
 * commit. This module is its public face for the rest of the daemon.
 */
export type { Store, Coordination } from './store/types.js'
export { createStore, type CreateStoreParameters } from './store/createStore.js'
