/**
 * Reason codes travel on chain as bytes32: the ASCII code, right-padded with zero bytes.
 */
import { hexToBytes, stringToHex, type Hex } from 'viem'
import type { ReasonCode } from '../../core/errors.js'

/** `TTL_REACHED` → 0x54544c5f52454143484544000…(32 bytes). */
export function reasonToBytes32(code: ReasonCode): Hex {
  return stringToHex(code, { size: 32 })
}

/**
 * Read a bytes32 reason back as text (trailing zero bytes dropped). Anything that is not printable ASCII is returned
 * as its hex so that a log line never carries control characters.
 */
export function bytes32ToReason(hex: Hex): string {
  const bytes = hexToBytes(hex)
  let end = bytes.length
  while (end > 0 && bytes[end - 1] === 0) end--
  const body = bytes.subarray(0, end)
  if (body.every((b) => b >= 0x20 && b < 0x7f)) return String.fromCharCode(...body)
  return hex.toLowerCase()
}
