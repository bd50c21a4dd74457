/**
 * Live spot price of one EC2 offer (DescribeSpotPriceHistory with the account's credentials), for placement to
 * confirm a catalog price before buying: the lowest current price across the region's zones, in USD per hour.
 */
import { DescribeSpotPriceHistoryCommand, type EC2Client } from '@aws-sdk/client-ec2'
import { callApi } from '../cloud/callApi.js'
import { failoverError } from '../cloud/errors.js'
import { classifyEc2Error } from './classifyEc2Error.js'

export type ConfirmEc2SpotPriceParameters = {
  /** A client for the offer's region (createAwsEc2Provisioner(...).clientFor(region)). */
  client: EC2Client
  instanceType: string
  /** Default "Linux/UNIX". */
  productDescription?: string
  signal: AbortSignal
  /** Per call, ms. Default 30_000. */
  timeoutMs?: number
  /** Only prices newer than this (default: the last 3 hours). */
  since?: Date
}

/** The live spot price as a decimal string (USD per hour), e.g. "0.0312". Throws CLOUD_CAPACITY when none is quoted. */
export async function confirmEc2SpotPrice(p: ConfirmEc2SpotPriceParameters): Promise<string> {
  const latest = new Map<string, { at: number; price: string }>()
  let token: string | undefined
  do {
    const r = await callApi(
      'ec2 DescribeSpotPriceHistory',
      async (abortSignal) => {
        try {
          return await p.client.send(
            new DescribeSpotPriceHistoryCommand({
              InstanceTypes: [p.instanceType as never],
              ProductDescriptions: [p.productDescription ?? 'Linux/UNIX'],
              StartTime: p.since ?? new Date(Date.now() - 3 * 3600_000),
              NextToken: token,
            }),
            { abortSignal },
          )
        } catch (err) {
          throw classifyEc2Error(err, 'DescribeSpotPriceHistory')
        }
      },
      { signal: p.signal, timeoutMs: p.timeoutMs },
    )
    for (const h of r.SpotPriceHistory ?? []) {
      if (!h.SpotPrice || !h.AvailabilityZone || !/^\d+(\.\d+)?$/.test(h.SpotPrice)) continue
      const at = h.Timestamp ? h.Timestamp.getTime() : 0
      const cur = latest.get(h.AvailabilityZone)
      if (!cur || cur.at < at) latest.set(h.AvailabilityZone, { at, price: h.SpotPrice })
    }
    token = r.NextToken || undefined
  } while (token)
  const prices = [...latest.values()].map((x) => x.price)
  if (!prices.length) throw failoverError('aws', { kind: 'capacity', scope: 'offer' }, `no spot price quoted for ${p.instanceType}`)
  // decimal strings compared without floats: pad to a common scale
  const scale = Math.max(...prices.map((x) => (x.split('.')[1] ?? '').length))
  const key = (x: string) => BigInt(x.replace('.', '') + '0'.repeat(scale - (x.split('.')[1] ?? '').length))
  return prices.reduce((a, b) => (key(b) < key(a) ? b : a))
}
