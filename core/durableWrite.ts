import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Replace `path` with `text` so that a crash or a power cut leaves either the old file or the new one, never a part:
 * written to `<path>.tmp`, fsynced, renamed over `path`, and the directory fsynced (the rename itself is durable).
 */
export function writeFileDurably(path: string, text: string, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true })
  const tmp = `${path}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  const dfd = openSync(dirname(path), 'r')
  try {
    fsyncSync(dfd)
  } finally {
    closeSync(dfd)
  }
}
