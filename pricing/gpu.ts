/**
 * GPU model names across sources: "NVIDIA_B200" (Vultr), "NVIDIA A10G" (Vantage), "A100-80GB" (SkyPilot).
 */

const VENDOR = /^(nvidia|amd|intel|habana)[\s_-]+/i

/** A display name without the vendor prefix and with "_" as spaces, e.g. "NVIDIA_B200" → "B200". */
export function canonicalGpuModel(raw: string): string {
  return raw.trim().replace(VENDOR, '').replace(/_/g, ' ').trim()
}

/** Comparison key: case, vendor prefix, spaces, "-" and "_" ignored ("RTX6000-Ada" = "RTX 6000 Ada"). */
export function gpuKey(model: string): string {
  return canonicalGpuModel(model).toLowerCase().replace(/[\s_-]+/g, '')
}
