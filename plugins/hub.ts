import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Hub } from '../services/hub.ts'

declare module 'fastify' {
  interface FastifyInstance { registryHub: Hub }
}

async function hubPlugin (fastify: FastifyInstance): Promise<void> {
  const config = fastify.registryConfig
  const { presence, bus } = fastify.registryStore
  const hub = new Hub({
    nodeId: config.nodeId,
    presence,
    bus,
    limits: config.limits,
    log: fastify.log.child({ nodeId: config.nodeId }),
    verify: fastify.registryVerify,
    authorize: config.authorize,
    now: Date.now,
    // Metrics stay out of services/: the hub only calls this optional observer.
    observer: fastify.registryObserver
  })
  await hub.start()
  fastify.decorate('registryHub', hub)
  // Sockets close with 1001 in preClose (registered by routes/ws.ts); here the peers leave
  // before the store below us closes.
  fastify.addHook('onClose', async () => { await hub.close() })
}

export default fp(hubPlugin, { name: 'registry-hub', dependencies: ['registry-config', 'registry-auth', 'registry-store', 'registry-metrics'] })
