// Tokens a signer library refuses to make: the forgeries of PROTOCOL.md §1.
import { createHmac, generateKeyPairSync } from 'node:crypto'

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

export function claims (extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub: 'alice', projects: ['*'], exp: Math.floor(Date.now() / 1000) + 3600, ...extra }
}

/** `alg: none`, no signature. */
export function unsignedToken (payload: Record<string, unknown> = claims()): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`
}

/** An HMAC token with any `alg` and any key bytes (e.g. a PEM public key). */
export function hmacToken (key: string, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256', payload: Record<string, unknown> = claims()): string {
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg]
  const body = `${b64({ alg, typ: 'JWT' })}.${b64(payload)}`
  return `${body}.${createHmac(hash, key).update(body).digest('base64url')}`
}

export interface KeyPair { publicKey: string, privateKey: string }

export function rsaKeys (): KeyPair {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
}

export function ecKeys (): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
}
