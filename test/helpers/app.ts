// Builds a real registry on port 0 and real `ws` peers against it; every teardown is
// registered where the thing is created (STYLE.md §9).
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createSigner } from 'fast-jwt'
import { Writable } from 'node:stream'
import registry, { type RegistryOptions } from '../../app.ts'

export const secret = 'test-secret-that-is-long-enough-for-hs256'

interface Teardown { teardown: (fn: () => unknown) => void }

export type TokenClaims = Record<string, unknown> & { sub?: string, projects?: string[] }

/** A real HS256 token; `exp` defaults to an hour from now. */
export function token (claims: TokenClaims = {}, key: string = secret, algorithm: 'HS256' | 'RS256' | 'ES256' = 'HS256'): string {
  const sign = createSigner({ key, algorithm })
  return sign({ sub: 'alice', projects: ['*'], exp: Math.floor(Date.now() / 1000) + 3600, ...claims })
}

export interface Built {
  app: FastifyInstance
  url: string
  wsUrl: (project: string, query?: string) => string
  /** Captured pino lines, when `captureLogs` was set. */
  logs: Array<Record<string, unknown>>
}

export interface BuildOptions {
  registry?: Partial<RegistryOptions>
  captureLogs?: boolean | string
  prefix?: string
  /** Options of the host Fastify instance. */
  fastify?: FastifyServerOptions
}

/** Starts Fastify with the registry mounted, listening on 127.0.0.1:0. */
export async function build (t: Teardown, opts: BuildOptions = {}): Promise<Built> {
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line !== '') logs.push(JSON.parse(line))
      cb()
    }
  })
  const level = typeof opts.captureLogs === 'string' ? opts.captureLogs : 'info'
  const app = Fastify({ logger: opts.captureLogs !== undefined && opts.captureLogs !== false ? { level, stream } : false, ...opts.fastify })
  const prefix = opts.prefix ?? ''
  // test/direct-upgrades.test.ts runs whole files again with the standalone server's setting.
  const direct = process.env.REGISTRY_TEST_DIRECT_UPGRADES === '1' ? { directUpgrades: true } : {}
  await app.register(registry, { jwt: { secret }, ...direct, ...opts.registry, prefix } as RegistryOptions)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const url = `http://127.0.0.1:${port}${prefix}`
  return {
    app,
    url,
    wsUrl: (project, query = '') => `ws://127.0.0.1:${port}${prefix}/v1/ws?project=${encodeURIComponent(project)}${query}`,
    logs
  }
}
