import { createPublicKey } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { userFromClaims, type VerifyOutcome } from '../services/auth.ts'
import type { RegistryConfig } from './config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Verifies a registry token: signature, pinned algorithm, exp/nbf, iss/aud, claims. */
    registryVerify: (token: string) => VerifyOutcome
  }
}

/** A namespace keeps our JWT setup apart from a host's own @fastify/jwt registration. */
const namespace = 'workstreamRegistry'

function algorithmFor (publicKey: string): 'RS256' | 'ES256' {
  const type = createPublicKey(publicKey).asymmetricKeyType
  if (type === 'rsa') return 'RS256'
  if (type === 'ec') return 'ES256'
  throw new Error(`registry option jwt.publicKey: unsupported key type ${String(type)} (use RSA or EC P-256)`)
}

async function authPlugin (fastify: FastifyInstance): Promise<void> {
  const { jwt, limits } = fastify.registryConfig
  const algorithm = jwt.publicKey !== undefined ? algorithmFor(jwt.publicKey) : 'HS256'
  await fastify.register(fastifyJwt, {
    namespace,
    secret: jwt.publicKey !== undefined ? { public: jwt.publicKey } : jwt.secret as string,
    verify: {
      // Pinned to the key's type: alg:none, HS384/512 and HS256-keyed-with-the-PEM all fail.
      algorithms: [algorithm],
      clockTolerance: limits.clockToleranceMs,
      // fast-jwt checks iss/aud only when present: a configured one must also be required.
      requiredClaims: ['sub', 'exp', 'projects', ...(jwt.issuer !== undefined ? ['iss'] : []), ...(jwt.audience !== undefined ? ['aud'] : [])],
      ...(jwt.issuer !== undefined ? { allowedIss: jwt.issuer } : {}),
      ...(jwt.audience !== undefined ? { allowedAud: jwt.audience } : {})
    }
  })
  const jwtApi = (fastify.jwt as unknown as Record<string, { verify: (t: string) => unknown }>)[namespace]
  fastify.decorate('registryVerify', (token: string): VerifyOutcome => {
    let payload: unknown
    try {
      payload = jwtApi.verify(token)
    } catch (err) {
      return { ok: false, message: describeJwtError(err) }
    }
    return userFromClaims(payload)
  })
}

function describeJwtError (err: unknown): string {
  const code = (err as { code?: string }).code ?? ''
  if (code.includes('EXPIRED')) return 'token expired'
  if (code.includes('INACTIVE')) return 'token not yet valid'
  if (code.includes('INVALID_SIGNATURE')) return 'bad token signature'
  if (code.includes('INVALID_ALGORITHM')) return 'token algorithm not allowed'
  if (code.includes('MISSING_REQUIRED_CLAIM')) return 'malformed token: missing a required claim'
  if (code.includes('INVALID_CLAIM')) return 'token issuer or audience not accepted'
  return 'malformed token'
}

/**
 * PROTOCOL.md §1: `Authorization: Bearer` wins; `?access_token=` is for browsers' upgrades.
 * Undefined when the request carries no token at all.
 */
export function tokenFrom (request: FastifyRequest, allowQuery: boolean): string | undefined {
  return tokenOf(request.headers.authorization, allowQuery ? (request.query as Record<string, unknown> | undefined)?.access_token : undefined)
}

/** tokenFrom for a request Fastify has not parsed: the header, else the query's value if it is one string. */
export function tokenOf (authorization: string | undefined, queryToken: unknown): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    return match === null ? '' : match[1]
  }
  return typeof queryToken === 'string' ? queryToken : undefined
}

export default fp(authPlugin, { name: 'registry-auth', dependencies: ['registry-config'] })
export type { RegistryConfig }
