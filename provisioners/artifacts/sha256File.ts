import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { AbortedError } from '../../core/errors.js'

/** Lowercase hex sha256 of a file, streamed; rejects with AbortedError when `signal` aborts. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  if (signal?.aborted) throw new AbortedError('hashing', signal.reason)
  const hash = createHash('sha256')
  const stream = createReadStream(path, signal ? { signal } : {})
  try {
    for await (const chunk of stream) hash.update(chunk as Buffer)
  } catch (err) {
    if (signal?.aborted) throw new AbortedError('hashing', signal.reason)
    throw err
  }
  return hash.digest('hex')
}
