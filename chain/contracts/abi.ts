/**
 * Human-readable ABIs of the contracts, for viem's static typing. abi.test.ts checks them against solc's output.
 */
import { parseAbi } from 'viem'

/** ERC-20 test stablecoin (6 decimals, open mint). */
export const testStablecoinAbi = parseAbi([
  'error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed)',
  'error InsufficientBalance(address from, uint256 balance, uint256 needed)',
  'error ZeroAddress()',
  'event Approval(address indexed owner, address indexed spender, uint256 value)',
  'event Transfer(address indexed from, address indexed to, uint256 value)',
  'function allowance(address, address) view returns (uint256)',
  'function approve(address spender, uint256 amount) returns (bool)',
  'function balanceOf(address) view returns (uint256)',
  'function decimals() view returns (uint8)',
  'function mint(address to, uint256 amount)',
  'function name() view returns (string)',
  'function symbol() view returns (string)',
  'function totalSupply() view returns (uint256)',
  'function transfer(address to, uint256 amount) returns (bool)',
  'function transferFrom(address from, address to, uint256 amount) returns (bool)',
])

/** BlueprintRegistry: immutable blueprints with sources, requirements and hourly prices per tier. */
export const blueprintRegistryAbi = parseAbi([
  'struct Source { uint8 kind; string uri; bytes32 digest; }',
  'struct Requirements { uint32 vcpuMilli; uint32 memoryMiB; uint32 storageGiB; uint16 gpuCount; string gpuModel; uint16[] ports; }',
  'struct Blueprint { address developer; string name; Source[] sources; Requirements requirements; uint256[] pricePerHour; }',
  'error EmptyName()',
  'error NoPrices()',
  'error NoSources()',
  'error PriceTooHigh(uint256 tier, uint256 price, uint256 max)',
  'error TooManyTiers(uint256 tiers, uint256 max)',
  'error UnknownBlueprint(uint64 blueprintId)',
  'error ZeroPrice(uint256 tier)',
  'event BlueprintRegistered(uint64 indexed blueprintId, address indexed developer, string name)',
  'function MAX_PRICE() view returns (uint256)',
  'function MAX_TIERS() view returns (uint256)',
  'function blueprintCount() view returns (uint64)',
  'function exists(uint64 id) view returns (bool)',
  'function getBlueprint(uint64 id) view returns (Blueprint)',
  'function prices(uint64 id) view returns (uint256[])',
  'function registerBlueprint(string name, Source[] sources, Requirements req, uint256[] pricePerHour) returns (uint64 id)',
])

/** ServiceEscrow: deposits, pro-rata earnings by time, withdraw, refund. */
export const serviceEscrowAbi = parseAbi([
  'struct Service { address customer; address operator; uint64 blueprintId; uint8 tier; uint256 ratePerHour; uint256 balance; uint256 earned; uint64 settledAt; uint64 endsAt; uint64 ttl; uint8 state; }',
  'constructor(address token_, address registry_)',
  'error AlreadyEnded(uint64 serviceId, uint8 state)',
  'error AmountTooLarge(uint256 amount, uint256 max)',
  'error InvalidState(uint64 serviceId, uint8 state)',
  'error NotCustomer(uint64 serviceId, address caller)',
  'error NotOperator(uint64 serviceId, address caller)',
  'error RateOutOfRange(uint8 tier, uint256 ratePerHour)',
  'error TransferFailed(address token, address to, uint256 amount)',
  'error TtlTooLong(uint64 ttlSeconds, uint64 max)',
  'error UnknownBlueprint(uint64 blueprintId)',
  'error UnknownService(uint64 serviceId)',
  'error UnknownTier(uint8 tier, uint256 tiers)',
  'error ZeroAddress()',
  'error ZeroAmount()',
  'error ZeroTtl()',
  'event PaymentReceived(uint64 indexed serviceId, address indexed payer, uint256 amount, uint256 balance, uint64 paidUntil, uint64 settledAt)',
  'event Refunded(uint64 indexed serviceId, address indexed customer, uint256 amount, bytes32 reason)',
  'event ServiceActivated(uint64 indexed serviceId, uint64 activatedAt, uint64 endsAt)',
  'event ServiceInitiated(uint64 indexed serviceId, uint64 indexed blueprintId, address indexed customer, address operator, uint8 tier, bytes preferences, uint64 ttlSeconds, uint256 deposit, uint256 ratePerHour)',
  'event ServiceTerminated(uint64 indexed serviceId, address indexed by)',
  'event TierChanged(uint64 indexed serviceId, uint8 tier, uint256 ratePerHour, uint256 balance, uint64 settledAt)',
  'event Withdrawn(uint64 indexed serviceId, address indexed operator, uint256 amount, uint256 balance, uint64 settledAt)',
  'function MAX_AMOUNT() view returns (uint256)',
  'function MAX_RATE() view returns (uint256)',
  'function MAX_TTL() view returns (uint64)',
  'function accruedNow(uint64 serviceId) view returns (uint256)',
  'function activate(uint64 serviceId)',
  'function changeTier(uint64 serviceId, uint8 tier)',
  'function getService(uint64 serviceId) view returns (Service)',
  'function getServices(uint256[] ids) view returns (Service[] out)',
  'function paidUntil(uint64 serviceId) view returns (uint64)',
  'function refund(uint64 serviceId, bytes32 reason)',
  'function registry() view returns (address)',
  'function requestService(uint64 blueprintId, address operator, uint8 tier, bytes preferences, uint64 ttlSeconds, uint256 deposit) returns (uint64 serviceId)',
  'function serviceCount() view returns (uint64)',
  'function terminate(uint64 serviceId)',
  'function token() view returns (address)',
  'function topUp(uint64 serviceId, uint256 amount)',
  'function withdraw(uint64 serviceId)',
])

/** Service states as stored on chain (index = the uint8 value). */
export const serviceStates = ['none', 'requested', 'active', 'terminated', 'closed'] as const
export type ServiceState = (typeof serviceStates)[number]

/** Source kinds as stored on chain (index = the uint8 value). */
export const sourceKinds = ['native', 'container', 'testing'] as const
