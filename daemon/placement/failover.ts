/**
 * Which provisioning errors move placement to the next candidate, and how far the block reaches (SkyPilot's failover:
 * a capacity error blocks the offer, a quota error the region, an auth error the provider). The rule lives with the
 * provisioners' errors, which carry the class.
 */
export { failoverOf, type FailoverClass } from '../../provisioners/errors.js'
export type FailoverKind = import('../../provisioners/errors.js').FailoverClass['kind']
export type FailoverScope = import('../../provisioners/errors.js').FailoverClass['scope']
