/**
 * The grid worker of test/fakes/grid-worker-chain.cjs (node contracts created and cancelled for real on TFChain under
 * chopsticks, deployments built and signed by grid_client) with a fake Zero-OS node behind it
 * (test/fakes/zos-node.cjs): each deployment's VM boots as a real local process on the contract's public IP, and
 * stops when its contract is cancelled. What stays faked is the transport (RMB relay) and the node itself.
 */
'use strict'
const { serve } = require('./grid-worker-chain.cjs')
const { createZosNode } = require('./zos-node.cjs')

serve(createZosNode())
