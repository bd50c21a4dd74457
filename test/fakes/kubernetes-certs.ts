/**
 * Test helper for the fake Kubernetes API server: a throw-away CA, a server certificate for 127.0.0.1 and a client
 * certificate (made with the `openssl` CLI), and kubeconfig files in the shape of the recorded kubeadm admin
 * kubeconfig in ../shared/fixtures/kubernetes/ (its REDACTED fields filled with these PEMs).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** ../shared/fixtures/kubernetes relative to the project root. */
export const kubernetesFixturesDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/kubernetes')

export type TestPki = { caCert: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string }

let cached: TestPki | undefined

/** Generate (once per process) a CA, a server cert for 127.0.0.1 and a client cert (O=system:masters). */
export function testPki(): TestPki {
  if (cached) return cached
  const dir = mkdtempSync(join(tmpdir(), 'fake-k8s-pki-'))
  const f = (n: string) => join(dir, n)
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  try {
    ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=fake-kubernetes-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    const leaf = (name: string, subj: string, ext: string) => {
      ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj)
      writeFileSync(f(`${name}.ext`), ext)
      ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '2', '-extfile', f(`${name}.ext`))
    }
    leaf('server', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
    leaf('client', '/O=system:masters/CN=kubernetes-admin', 'extendedKeyUsage=clientAuth\n')
    const r = (n: string) => readFileSync(f(n), 'utf8')
    cached = { caCert: r('ca.crt'), serverCert: r('server.crt'), serverKey: r('server.key'), clientCert: r('client.crt'), clientKey: r('client.key') }
    return cached
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A kubeconfig for `server` built from the recorded kubeadm one: https gets the CA and client cert/key as base64
 * data fields; http replaces the CA with `insecure-skip-tls-verify: true` (the client refuses plain http otherwise)
 * and authenticates with a bearer token.
 */
export function kubeconfigFor(server: string, pki: TestPki | undefined): string {
  const recorded = readFileSync(join(kubernetesFixturesDir, 'kubeconfig.kubeadm-admin.redacted.yaml'), 'utf8')
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  let text = recorded.replace(/server: \S+/, `server: ${server}`)
  if (pki) {
    text = text
      .replace('certificate-authority-data: REDACTED', `certificate-authority-data: ${b64(pki.caCert)}`)
      .replace('client-certificate-data: REDACTED', `client-certificate-data: ${b64(pki.clientCert)}`)
      .replace('client-key-data: REDACTED', `client-key-data: ${b64(pki.clientKey)}`)
  } else {
    text = text
      .replace('certificate-authority-data: REDACTED', 'insecure-skip-tls-verify: true')
      .replace(/client-certificate-data: REDACTED\n(\s*)client-key-data: REDACTED/, 'token: fake-kubernetes-token')
  }
  if (text.includes('REDACTED')) throw new Error('the recorded kubeconfig changed shape; update kubeconfigFor')
  return text
}

/** Write a kubeconfig into a fresh temp dir; returns its path and a cleanup function. */
export function writeKubeconfig(text: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fake-k8s-kubeconfig-'))
  const path = join(dir, 'config')
  writeFileSync(path, text, { mode: 0o600 })
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) }
}
