/** The SSH target: public surface. */
export { createSshProvisioner, type SshProvisioner, type SshProvisionerParameters } from './createSshProvisioner.js'
export { HostKeyMismatchError, SshAuthError, RemoteCommandError, HostUnsupportedError } from './errors.js'
export { shellQuote, quoteWord } from './shellQuote.js'
export type { SshHost, Placement, HostCapacity, Resources, ReplicaMode } from './types.js'
export { sshHostsFromConfig, createSshProvisionerFromConfig, type SshHostsConfig } from './fromConfig.js'
