/**
 * The service manager's entry point. Its lifecycle steps live one per file in daemon/service/ (quote, deploy,
 * reconcile, refund, terminate, vanished, tick), composed by `createServiceManager` over an explicit context.
 */
export { createServiceManager, type CreateServiceManagerParameters, type ServiceManager } from './service/manager.js'
export { accrueCost } from './service/ledger.js'
