import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    /** This registry instance's own Prometheus registry (never the global one: hosts may run several). */
    registryMetrics: Registry
  }
}

async function metricsPlugin (fastify: FastifyInstance): Promise<void> {
  const registry = new Registry()
  registry.setDefaultLabels({ node: fastify.registryConfig.nodeId })
  fastify.decorate('registryMetrics', registry)
}

export default fp(metricsPlugin, { name: 'registry-metrics', dependencies: ['registry-config'] })
