import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Bus } from '../services/bus/bus.ts'
import { LocalBus } from '../services/bus/local.ts'
import { MemoryPresence } from '../services/presence/memory.ts'
import type { PresenceStore } from '../services/presence/store.ts'
import { connectRedis } from './redis.ts'

declare module 'fastify' {
  interface FastifyInstance { registryStore: { presence: PresenceStore, bus: Bus } }
}

/** The presence store and bus: the host's when it passed them, Redis when configured, else the embedded default. */
async function storePlugin (fastify: FastifyInstance): Promise<void> {
  const config = fastify.registryConfig
  const given = config.store
  if (given !== undefined) {
    // Handed to us: the host closes it (STYLE.md §7).
    fastify.decorate('registryStore', given)
    return
  }
  if (config.redis !== undefined) {
    fastify.decorate('registryStore', await connectRedis(fastify, config.redis, config.nodeId, config.limits.presenceTtlMs))
    return
  }
  const bus = new LocalBus()
  const presence = new MemoryPresence(bus)
  fastify.decorate('registryStore', { presence, bus })
  fastify.addHook('onClose', async () => {
    await presence.close()
    await bus.close()
  })
}

export default fp(storePlugin, { name: 'registry-store', dependencies: ['registry-config', 'registry-metrics'] })
