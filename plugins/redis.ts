import fastifyRedis from '@fastify/redis'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram } from 'prom-client'
import { Cluster, type Redis } from 'ioredis'
import { RedisBus } from '../services/bus/redis.ts'
import { RedisPresence } from '../services/presence/redis.ts'
import { createClient, isCluster, seedsOf } from '../services/redis/connect.ts'
import { RedisLink, type RedisClient, type RedisObserver } from '../services/redis/link.ts'

type Client = Redis | Cluster

/**
 * The plugin's `redis` option: a URL (a comma-separated list of seeds is a Redis Cluster),
 * or the host's own @fastify/redis clients, which the host keeps closing. Without a
 * `subscriber`, a duplicate of `client` (ours to close) carries the subscriptions.
 */
export type RedisOption = string | { url: string } | { client: Client, subscriber?: Client }

export interface RedisStore { presence: RedisPresence, bus: RedisBus }

/**
 * Connects the node to Redis through @fastify/redis (it waits for each client to be ready at
 * boot), then builds RedisBus and RedisPresence on one link. Closing order (STYLE.md §7):
 * this node's peers leave, timers stop, then the clients we created quit.
 */
export async function connectRedis (fastify: FastifyInstance, option: RedisOption, nodeId: string, presenceTtlMs: number): Promise<RedisStore> {
  const created: Client[] = []
  let cmd: Client
  let sub: Client
  let cluster: boolean
  checkOption(option)
  if (typeof option === 'string' || 'url' in option) {
    const url = typeof option === 'string' ? option : option.url
    cluster = isCluster(url)
    created.push(cmd = createClient(url, 'commands'), sub = createClient(url, 'subscriber'))
  } else {
    cmd = option.client
    cluster = cmd instanceof Cluster
    if (option.subscriber !== undefined) sub = option.subscriber
    else created.push(sub = cmd instanceof Cluster ? cmd.duplicate() : cmd.duplicate())
  }
  await awaitReady(fastify, cmd, sub, created)

  const metrics = redisMetrics(fastify, () => presence.lastRefreshAt)
  const link = new RedisLink(cmd as unknown as RedisClient, sub as unknown as RedisClient, { observer: metrics, log: fastify.log.child({ nodeId, redis: true }) })
  // The bus re-subscribes before presence re-asserts, so no event of a re-assertion is missed.
  const bus = new RedisBus(link, { resubscribe: !cluster })
  const presence = new RedisPresence(link, { nodeId, presenceTtlMs, log: fastify.log.child({ nodeId }) })
  fastify.addHook('onClose', async () => {
    await presence.close()
    await bus.close()
    await Promise.all(created.map(c => c.quit().catch(() => c.disconnect())))
  })
  await link.start()
  presence.start()
  return { presence, bus }
}

/** A bad option fails the boot with one line naming it, not with a connection that never comes. */
function checkOption (option: unknown): void {
  const url = typeof option === 'string' ? option : (option as { url?: unknown } | null)?.url
  if (typeof url === 'string') {
    for (const seed of seedsOf(url)) {
      let protocol = ''
      try { protocol = new URL(seed).protocol } catch {}
      if (protocol !== 'redis:' && protocol !== 'rediss:') throw new Error(`registry option redis: ${JSON.stringify(seed)} is not a redis:// or rediss:// URL`)
    }
    return
  }
  const client = (option as { client?: { status?: unknown } } | null)?.client
  if (typeof client?.status !== 'string') throw new Error('registry option redis: expected a URL, { url }, or { client, subscriber? } ioredis clients')
}

/**
 * @fastify/redis, in a context of its own so no `redis` decorator reaches the host's, waits
 * for our clients to be ready. A host that already decorated `redis` keeps it untouched.
 */
async function awaitReady (fastify: FastifyInstance, cmd: Client, sub: Client, created: Client[]): Promise<void> {
  if (fastify.hasDecorator('redis')) {
    await Promise.all([cmd, sub].map(c => c.status === 'ready' ? undefined : new Promise(resolve => c.once('ready', resolve))))
    return
  }
  try {
    await fastify.register(async (scope) => {
      await scope.register(fastifyRedis, { client: cmd, closeClient: false, namespace: 'commands' } as Parameters<typeof fastifyRedis>[1])
      await scope.register(fastifyRedis, { client: sub, closeClient: false, namespace: 'subscriber' } as Parameters<typeof fastifyRedis>[1])
    })
  } catch (err) {
    for (const c of created) c.disconnect()
    throw err
  }
}

/** Redis metrics of DESIGN.md "Operations", on this instance's registry (pub/sub counts are plain numbers until scraped). */
function redisMetrics (fastify: FastifyInstance, lastRefreshAt: () => number): RedisObserver {
  const registers = [fastify.registryMetrics]
  let sent = 0
  let received = 0
  const flushed = { out: 0, in: 0 }
  const roundTrip = new Histogram({
    name: 'registry_redis_command_seconds',
    help: 'Round trip of Redis commands and scripts, by command',
    labelNames: ['command'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers
  })
  const reconnects = new Counter({ name: 'registry_redis_reconnects_total', help: 'Times the Redis link came back after being lost', registers })
  // eslint-disable-next-line no-new
  new Counter({
    name: 'registry_redis_pubsub_messages_total',
    help: 'Pub/sub messages published (out) and received (in) by this node',
    labelNames: ['direction'],
    registers,
    collect () {
      this.inc({ direction: 'out' }, sent - flushed.out)
      this.inc({ direction: 'in' }, received - flushed.in)
      flushed.out = sent
      flushed.in = received
    }
  })
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'registry_redis_liveness_age_seconds',
    help: 'Seconds since this node last refreshed its liveness in wsp:nodes',
    registers,
    collect () { const at = lastRefreshAt(); this.set(at === 0 ? -1 : (Date.now() - at) / 1000) }
  })
  return {
    roundTrip: (command, seconds) => roundTrip.observe({ command }, seconds),
    published: () => { sent++ },
    received: () => { received++ },
    reconnected: () => reconnects.inc()
  }
}
