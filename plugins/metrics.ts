import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { HubObserver } from '../services/hub.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** This registry instance's own Prometheus registry (never the global one: hosts may run several). */
    registryMetrics: Registry
    /** The hub's counters; undefined when metrics are off, so the hub then pays nothing. */
    registryObserver: HubObserver | undefined
  }
}

const frameTypesIn = ['signal', 'broadcast', 'peers', 'meta', 'auth', 'ping', 'invalid'] as const
const frameTypesOut = ['welcome', 'signal', 'broadcast', 'peers', 'ack', 'pong', 'error', 'peer-joined', 'peer-left', 'peer-updated'] as const
const errorCodes = ['invalid_frame', 'peer_not_found', 'rate_limited', 'unauthorized', 'unavailable', 'internal'] as const

/**
 * Plain numbers bumped on the hot path and handed to prom-client only when scraped:
 * prom-client hashes the label set on every `inc()`, even on a pre-bound child, which is a
 * string build per frame. Here a frame costs one property increment.
 */
class Tally {
  readonly counts: Record<string, number> = Object.create(null)
  readonly #flushed: Record<string, number> = Object.create(null)
  constructor (keys: readonly string[]) {
    for (const k of keys) { this.counts[k] = 0; this.#flushed[k] = 0 }
  }

  add (key: string, n: number): void {
    if (this.counts[key] === undefined) { this.counts[key] = 0; this.#flushed[key] = 0 }
    this.counts[key] += n
  }

  /** Moves what accrued since the last scrape into `counter` under `label`. */
  flush (counter: Counter<string>, label: string): void {
    for (const k of Object.keys(this.counts)) {
      const delta = this.counts[k] - this.#flushed[k]
      this.#flushed[k] = this.counts[k]
      // inc(…, 0) still creates the series, so every known label shows from the first scrape.
      counter.inc({ [label]: k }, delta)
    }
  }
}

/** The metrics of DESIGN.md "Operations", as a HubObserver plus gauges read at scrape time. */
export function registryMetrics (fastify: FastifyInstance, registry: Registry): HubObserver {
  const framesIn = new Tally(frameTypesIn)
  const framesOut = new Tally(frameTypesOut)
  const errors = new Tally(errorCodes)
  const closes = new Tally([])
  const refusals = new Tally([])
  let slowConsumers = 0
  let slowFlushed = 0
  const hub = (): FastifyInstance['registryHub'] | undefined => fastify.hasDecorator('registryHub') ? fastify.registryHub : undefined

  const scraped: Array<Gauge<string> | Counter<string>> = [
    new Gauge({ name: 'registry_connections', help: 'Open WebSocket connections of this node', registers: [], collect () { this.set(hub()?.connections ?? 0) } }),
    new Gauge({ name: 'registry_peers', help: 'Peers admitted on this node (upgrades in progress included)', registers: [], collect () { this.set(hub()?.size ?? 0) } }),
    new Gauge({ name: 'registry_projects', help: 'Projects with at least one peer on this node', registers: [], collect () { this.set(hub()?.projectCount ?? 0) } }),
    new Counter({ name: 'registry_frames_in_total', help: 'Client frames received, by type (invalid: refused by validation)', labelNames: ['type'], registers: [], collect () { framesIn.flush(this, 'type') } }),
    new Counter({ name: 'registry_frames_out_total', help: 'Frames written to sockets, by type', labelNames: ['type'], registers: [], collect () { framesOut.flush(this, 'type') } }),
    new Counter({ name: 'registry_frame_errors_total', help: 'error frames sent, by code (PROTOCOL.md §3)', labelNames: ['code'], registers: [], collect () { errors.flush(this, 'code') } }),
    new Counter({ name: 'registry_closes_total', help: 'Closed connections, by close code', labelNames: ['code'], registers: [], collect () { closes.flush(this, 'code') } }),
    new Counter({ name: 'registry_refusals_total', help: 'Refused WebSocket upgrades, by refusal code (PROTOCOL.md §2)', labelNames: ['code'], registers: [], collect () { refusals.flush(this, 'code') } }),
    new Counter({
      name: 'registry_slow_consumer_closes_total',
      help: 'Connections closed 4009 because their outbound buffer passed maxBufferedBytes',
      registers: [],
      collect () { this.inc(slowConsumers - slowFlushed); slowFlushed = slowConsumers }
    })
  ]
  // registers: [] above keeps them off prom-client's global registry.
  for (const metric of scraped) registry.registerMetric(metric)
  const relay = new Histogram({
    name: 'registry_relay_seconds',
    help: 'Sampled time from a signal or broadcast frame handed to the hub to its last socket write',
    buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
    registers: [registry]
  })

  // The upgrade route's refusals are plain HTTP replies with our JSON body; read its code.
  fastify.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 && typeof payload === 'string' && request.routeOptions.url?.endsWith('/v1/ws') === true) {
      const code = /"code":"([a-z_]+)"/.exec(payload)?.[1]
      if (code !== undefined) refusals.add(code, 1)
    }
    return payload
  })

  return {
    frameIn: (type) => { framesIn.counts[type]++ },
    frameOut: (type, count) => framesOut.add(type, count),
    error: (code) => errors.add(code, 1),
    close: (code) => closes.add(String(code), 1),
    slowConsumer: () => { slowConsumers++ },
    relayed: (seconds) => relay.observe(seconds)
  }
}

async function metricsPlugin (fastify: FastifyInstance): Promise<void> {
  const registry = new Registry()
  registry.setDefaultLabels({ node: fastify.registryConfig.nodeId })
  fastify.decorate('registryMetrics', registry)
  if (!fastify.registryConfig.metrics) {
    fastify.decorate('registryObserver', undefined)
    return
  }
  // Process metrics, event-loop lag (monitorEventLoopDelay) and GC included.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 })
  fastify.decorate('registryObserver', registryMetrics(fastify, registry))
}

export default fp(metricsPlugin, { name: 'registry-metrics', dependencies: ['registry-config'] })
