import { describe, expect, test } from 'vitest'
import { classifyPullFailure, imageHasDigest, parsePs, parseVolumes } from './inspect.js'

// recorded from podman 4.3.1 on this machine
const PS = `[
  { "AutoRemove": false, "Id": "774148e5d0414824193f0f353465053889d10ef8b3d4c9827eba47713f37ce18", "Image": "127.0.0.1:5000/bpo-echo@sha256:${'a'.repeat(64)}",
    "Labels": { "io.blueprint-operator.owner": "op", "io.blueprint-operator.replica": "0" }, "Names": ["bpo-abc-bp-1-r0"], "Pid": 8918,
    "Ports": [ { "host_ip": "127.0.0.1", "container_port": 8080, "host_port": 25001, "range": 1, "protocol": "tcp" } ],
    "StartedAt": 1796405582, "State": "running", "Status": "Up About a minute ago" }
]`
const VOLUMES = `[ { "Name": "vtest", "Driver": "local", "Mountpoint": "/tmp/ctrx/graph/volumes/vtest/_data", "Labels": { "a": "b" }, "Scope": "local" } ]`
const IMAGE = `[ { "Id": "2d5c", "Digest": "sha256:${'b'.repeat(64)}", "RepoDigests": [ "127.0.0.1:5000/bpo-echo@sha256:${'c'.repeat(64)}" ] } ]`

describe('podman output parsers', () => {
  test('default: ps', () => {
    expect(parsePs(PS)).toEqual([
      { id: '774148e5d0414824193f0f353465053889d10ef8b3d4c9827eba47713f37ce18', name: 'bpo-abc-bp-1-r0', image: `127.0.0.1:5000/bpo-echo@sha256:${'a'.repeat(64)}`, state: 'running', labels: { 'io.blueprint-operator.owner': 'op', 'io.blueprint-operator.replica': '0' }, ports: [{ containerPort: 8080, hostPort: 25001, hostIp: '127.0.0.1' }], pid: 8918, startedAt: 1796405582 },
    ])
    expect(parsePs('')).toEqual([])
    expect(parsePs('null')).toEqual([])
    expect(() => parsePs('{}')).toThrow()
  })

  test('default: volume ls', () => {
    expect(parseVolumes(VOLUMES)).toEqual([{ name: 'vtest', labels: { a: 'b' }, mountpoint: '/tmp/ctrx/graph/volumes/vtest/_data' }])
  })

  test('behavior: an image carries a digest by its Digest or a RepoDigest of the same repository', () => {
    expect(imageHasDigest(IMAGE, '127.0.0.1:5000/bpo-echo', `sha256:${'b'.repeat(64)}`)).toBe(true)
    expect(imageHasDigest(IMAGE, '127.0.0.1:5000/bpo-echo', `sha256:${'c'.repeat(64)}`)).toBe(true)
    expect(imageHasDigest(IMAGE, '127.0.0.1:5000/other', `sha256:${'c'.repeat(64)}`)).toBe(false)
    expect(imageHasDigest(IMAGE, '127.0.0.1:5000/bpo-echo', `sha256:${'d'.repeat(64)}`)).toBe(false)
    // docker lists Docker Hub images by their short name
    const hub = `[ { "Id": "x", "RepoDigests": [ "busybox@sha256:${'e'.repeat(64)}" ] } ]`
    expect(imageHasDigest(hub, 'docker.io/library/busybox', `sha256:${'e'.repeat(64)}`)).toBe(true)
    expect(imageHasDigest(hub, 'busybox', `sha256:${'e'.repeat(64)}`)).toBe(true)
    expect(imageHasDigest(hub, 'evil/busybox', `sha256:${'e'.repeat(64)}`)).toBe(false)
  })

  test('behavior: pull failures are classified once', () => {
    expect(classifyPullFailure('Error: initializing source docker://127.0.0.1:5000/x@sha256:aa: reading manifest sha256:aa in 127.0.0.1:5000/x: manifest unknown: manifest unknown').kind).toBe('digest-unknown')
    expect(classifyPullFailure('Error: pinging container registry 127.0.0.1:9: Get "http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused').kind).toBe('unreachable')
    expect(classifyPullFailure('Error: reading manifest: unauthorized: authentication required').kind).toBe('denied')
    expect(classifyPullFailure('something else').kind).toBe('other')
  })
})
