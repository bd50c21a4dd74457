/** The Hetzner Cloud target: public surface. */
export { hetznerSectionSchema, type HetznerSection } from './config.js'
export { createHetznerProvisioner, type HetznerProvisionerOptions } from './createHetznerProvisioner.js'
export { confirmHetznerPrice, type ConfirmHetznerPriceParameters } from './confirmHetznerPrice.js'
export { classifyHetznerError } from './hetznerApi.js'
