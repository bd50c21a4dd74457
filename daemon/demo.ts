/**
 * `npm run demo -- <command>`: act as the dev setup's demo customer against the chain `npm run dev` started.
 * Uses anvil's public development account 3 (the same the dev setup funded); never a real key.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { mnemonicToAccount } from 'viem/accounts'
import { createCommon } from '../core/common.js'
import { BaseError } from '../core/errors.js'
import { formatBaseUnits, toBaseUnits } from '../core/money.js'
import { TierNames } from '../core/spec.js'
import { anvilMnemonic } from '../chain/evm/anvil.js'
import { createEvmPublicClient, createEvmWalletClient } from '../chain/evm/clients.js'
import { createCustomerClient } from '../chain/evm/customer.js'
import { createEscrowClient } from '../chain/evm/escrow.js'
import type { DevInfo } from './dev.js'
import { devDir } from './dev.js'

type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }

const USAGE = `usage: npm run demo -- <command>
  top-up <serviceId> <amount USDC>     pay more into the service's escrow
  tier <serviceId> <basic|standard|premium>
  terminate <serviceId>                end it now; the unserved balance is refunded at once
  status <serviceId>                   what the escrow says
`

export async function demoCli(argv: string[], io: Io): Promise<number> {
  const [cmd, idArg, arg] = argv
  const usage = (msg: string) => {
    io.stderr.write(`error: ${msg} (npm run demo -- help)\n`)
    return 64
  }
  if (!cmd || cmd === 'help') {
    io.stderr.write(USAGE)
    return cmd ? 0 : 64
  }
  if (!['top-up', 'tier', 'terminate', 'status'].includes(cmd)) return usage(`unknown command ${JSON.stringify(cmd)}; one of top-up, tier, terminate, status`)
  if (!idArg || !/^\d+$/.test(idArg)) return usage(`${cmd} needs a numeric service id${idArg ? `, not ${JSON.stringify(idArg)}` : ''}`)
  if (cmd === 'top-up' && !(arg && /^\d+(\.\d{1,6})?$/.test(arg) && /[1-9]/.test(arg)))
    return usage(`top-up needs an amount in USDC such as 0.05${arg ? `, not ${JSON.stringify(arg)}` : ''}`)
  if (cmd === 'tier' && !TierNames.includes(arg as (typeof TierNames)[number])) return usage(`tier needs one of ${TierNames.join(', ')}${arg ? `, not ${JSON.stringify(arg)}` : ''}`)
  let info: DevInfo
  try {
    info = JSON.parse(readFileSync(join(devDir(), 'dev.json'), 'utf8')) as DevInfo
  } catch {
    io.stderr.write('no dev setup found: start `npm run dev` first (it writes .dev/dev.json)\n')
    return 1
  }
  const { common, shutdown } = createCommon({ level: 'warn', destination: { write: (l: string) => void io.stderr.write(l) } })
  const publicClient = createEvmPublicClient({ rpcUrl: info.rpcUrl, chainId: info.chainId })
  const account = mnemonicToAccount(anvilMnemonic, { addressIndex: 3 })
  const walletClient = createEvmWalletClient({ rpcUrl: info.rpcUrl, chainId: info.chainId, privateKey: `0x${Buffer.from(account.getHdKey().privateKey!).toString('hex')}` })
  const addrs = { token: info.token as `0x${string}`, registry: info.registry as `0x${string}`, escrow: info.escrow as `0x${string}` }
  const customer = createCustomerClient(common, { publicClient, walletClient, ...addrs })
  const id = BigInt(idArg)
  try {
    try {
      await publicClient.getChainId()
    } catch {
      io.stderr.write(`the dev chain at ${info.rpcUrl} does not answer: start \`npm run dev\` first (and keep it running)\n`)
      return 75
    }
    switch (cmd) {
      case 'top-up': {
        if (!arg) break
        const amount = toBaseUnits(arg, 6)
        const hash = await customer.topUp(id, amount)
        io.stdout.write(`paid ${arg} USDC into service ${id} (tx ${hash})\n`)
        return 0
      }
      case 'tier': {
        const tier = TierNames.indexOf(arg as (typeof TierNames)[number])
        if (tier < 0) break
        const hash = await customer.changeTier(id, tier)
        io.stdout.write(`service ${id} moved to ${arg} (tx ${hash})\n`)
        return 0
      }
      case 'terminate': {
        const hash = await customer.terminate(id)
        io.stdout.write(`service ${id} terminated (tx ${hash})\n`)
        return 0
      }
      case 'status': {
        const escrow = createEscrowClient(common, { publicClient, walletClient, escrow: addrs.escrow, registry: addrs.registry })
        const s = await escrow.getService(id)
        if (!s) {
          io.stdout.write(`no service ${id}\n`)
          return 1
        }
        const until = await escrow.paidUntil(id)
        const now = (await publicClient.getBlock({ blockTag: 'latest' })).timestamp
        // "active" on chain only means not ended: a service whose payment ran out is not served
        const state = s.state === 'active' && until !== undefined && until <= now ? `payment expired (scaled to zero until a top-up)` : s.state
        io.stdout.write(
          `service ${id}: ${state}, tier ${TierNames[s.tier] ?? s.tier}, balance ${formatBaseUnits(s.balance, 6)} USDC, earned ${formatBaseUnits(s.earned, 6)} USDC, ` +
            `paid until ${until ? new Date(Number(until) * 1000).toISOString() : '-'}, ends ${s.endsAt ? new Date(Number(s.endsAt) * 1000).toISOString() : '-'}\n` +
            `customer balance ${formatBaseUnits(await customer.balanceOf(), 6)} USDC\n`,
        )
        return 0
      }
    }
    return usage(`${cmd}: missing argument`)
  } catch (err) {
    if ((err as BaseError).code === 'RPC_UNAVAILABLE') {
      io.stderr.write(`the dev chain at ${info.rpcUrl} does not answer: start \`npm run dev\` first (and keep it running)\n`)
      return 75
    }
    io.stderr.write(`${err instanceof BaseError ? err.message : `error: ${(err as Error).message}`}\n`)
    return 1
  } finally {
    await shutdown(1000)
  }
}
