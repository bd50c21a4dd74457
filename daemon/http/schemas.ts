/**
 * JSON schemas shared by the routes (responses keep unlisted properties: the schemas document, they do not strip).
 */
const open = { additionalProperties: true } as const
const str = { type: 'string' } as const
const nstr = { type: ['string', 'null'] } as const

export const moneySchema = {
  type: 'object',
  description: 'token amounts in base units (decimal strings), USD as decimal strings',
  properties: { paid: str, earned: str, refunded: str, escrowed: str, cloudCostUsd: str, marginUsd: str, incomeUsdPerHour: str, costUsdPerHour: str },
} as const

export const transitionSchema = {
  type: 'object',
  properties: { at: str, from: nstr, to: str, cause: str, eventId: str, detail: str },
} as const

export const serviceSummarySchema = {
  $id: 'ServiceSummary',
  type: 'object',
  ...open,
  required: ['serviceId', 'state'],
  properties: {
    serviceId: str,
    blueprintId: str,
    customer: str,
    state: { type: 'string', enum: ['requested', 'provisioning', 'active', 'scaled-to-zero', 'terminating', 'closed', 'refunding', 'refunded'] },
    paymentExpired: { type: 'boolean' },
    tier: nstr,
    replicas: { type: 'integer' },
    endpoints: { type: 'array', items: str },
    target: nstr,
    hourlyUsd: nstr,
    paidUntil: { ...nstr, description: 'ISO time' },
    endsAt: nstr,
    reason: nstr,
    healthy: { type: ['boolean', 'null'] },
    money: moneySchema,
    token: { type: 'object', properties: { symbol: str, decimals: { type: 'integer' } } },
    updatedAt: str,
    lastChange: { anyOf: [transitionSchema, { type: 'null' }] },
  },
} as const

export const serviceViewSchema = {
  $id: 'Service',
  type: 'object',
  ...open,
  allOf: [{ $ref: 'ServiceSummary#' }],
  properties: {
    deploymentId: str,
    spec: { type: ['object', 'null'], ...open },
    quote: { type: ['object', 'null'], ...open },
    decision: { type: ['object', 'null'], description: 'the placement decision (winner, runners-up, rejected) when recorded', ...open },
    ledger: { type: 'object', ...open },
    timeline: { type: 'array', items: transitionSchema },
  },
} as const

export const targetSchema = {
  $id: 'Target',
  type: 'object',
  ...open,
  properties: {
    name: str,
    provider: str,
    kind: str,
    region: nstr,
    hourlyUsd: nstr,
    capacity: { type: ['object', 'null'], ...open },
    used: { type: 'object', ...open },
    free: { type: ['object', 'null'], ...open },
    services: { type: 'integer' },
    replicas: { type: 'object', properties: { wanted: { type: 'integer' }, ready: { type: 'integer' } } },
    lastError: { type: ['object', 'null'], ...open },
  },
} as const

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9]{1,78}$', description: 'on-chain service id' } },
} as const
