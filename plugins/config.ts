import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Authorize } from '../services/auth.ts'
import type { Bus } from '../services/bus/bus.ts'
import type { PresenceStore } from '../services/presence/store.ts'
import type { RedisOption } from './redis.ts'
import { firstOptionError, resolveLimits, type RegistryOptionsData, type ResolvedLimits } from '../services/options.ts'

/** What a host passes to `app.register(registry, options)`. */
export interface RegistryOptions extends RegistryOptionsData {
  /** Replaces the `projects` claim check (PROTOCOL.md §1). */
  authorize?: Authorize
  /** A presence store and bus to use instead of the embedded in-memory ones. */
  store?: { presence: PresenceStore, bus: Bus }
  /**
   * Cluster mode: a Redis URL (a comma-separated list of seeds means Redis Cluster), or the
   * host's own @fastify/redis clients `{ client, subscriber? }`. Unset: the in-memory store.
   */
  redis?: RedisOption
}

export interface RegistryConfig {
  nodeId: string
  jwt: RegistryOptionsData['jwt']
  limits: ResolvedLimits
  allowedOrigins: Set<string> | undefined
  authorize: Authorize | undefined
  store: RegistryOptions['store']
  redis: RedisOption | undefined
  metrics: boolean
  demo: boolean
  directUpgrades: boolean
}

declare module 'fastify' {
  interface FastifyInstance { registryConfig: RegistryConfig }
}

/** Validates the options once at boot; a bad option fails the boot with a one-line reason. */
export function resolveConfig (opts: RegistryOptions): RegistryConfig {
  // Fastify's own register options reach the plugin too; everything else must be ours, so a
  // misspelled option fails the boot instead of being ignored.
  const { authorize, store, redis, logLevel: _logLevel, logSerializers: _logSerializers, ...data } = opts as RegistryOptions & { logLevel?: unknown, logSerializers?: unknown }
  const problem = firstOptionError(data)
  if (problem !== undefined) throw new Error(problem)
  if (data.jwt.secret === undefined && data.jwt.publicKey === undefined) {
    throw new Error('registry option jwt: set either secret (HS256) or publicKey (RS256/ES256)')
  }
  if (data.jwt.secret !== undefined && data.jwt.publicKey !== undefined) {
    throw new Error('registry option jwt: set secret or publicKey, not both')
  }
  if (authorize !== undefined && typeof authorize !== 'function') throw new Error('registry option authorize: must be a function')
  return {
    nodeId: data.nodeId ?? randomBytes(6).toString('hex'),
    jwt: data.jwt,
    limits: resolveLimits(data.limits),
    allowedOrigins: data.allowedOrigins === undefined ? undefined : new Set(data.allowedOrigins),
    authorize,
    store,
    redis: redis === '' ? undefined : redis,
    metrics: data.metrics ?? true,
    demo: data.demo ?? false,
    directUpgrades: data.directUpgrades ?? false
  }
}

async function configPlugin (fastify: FastifyInstance, config: RegistryConfig): Promise<void> {
  fastify.decorate('registryConfig', config)
}

export default fp(configPlugin, { name: 'registry-config' })
