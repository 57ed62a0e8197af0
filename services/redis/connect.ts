// Builds the node's ioredis clients from REDIS_URL: one URL is a standalone Redis, a
// comma-separated list of seeds is a Redis Cluster (DESIGN.md "Configuration").
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis'

export type RedisRole = 'commands' | 'subscriber'

/**
 * No offline queue and no resend after a reconnect: a command either runs now or fails, so
 * nothing is delivered late or twice (PROTOCOL.md §3 "Delivery"); reconnects are quick so
 * relaying resumes well within 5 s of Redis coming back.
 */
function options (role: RedisRole, commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(50 * times, 500),
    // The subscriber's channels are restored by RedisBus, which then knows when they are live.
    autoResubscribe: role === 'commands',
    // Not ioredis's auto-pipelining: the link already sends a node's publishes of each
    // millisecond as one command per channel (link.ts), and auto-pipelining's per-flush
    // Pipeline, kept in a Map and a Set it fills and empties every time, held those payloads
    // through scavenges: ~2 MB copied and promoted at every scavenge on a node publishing
    // 10,000 msg/s, against ~0.9 MB without it (pauses 4-8 ms against 3-5 ms, --trace-gc-nvp).
    enableAutoPipelining: false,
    connectionName: `workstream-registry-${role}`
  }
}

export function seedsOf (url: string): string[] {
  return url.split(',').map(s => s.trim()).filter(s => s !== '')
}

export function isCluster (url: string): boolean {
  return seedsOf(url).length > 1
}

export function createClient (url: string, role: RedisRole, commandTimeoutMs = 1000): Redis | Cluster {
  const seeds = seedsOf(url)
  if (seeds.length === 1) return new Redis(seeds[0], options(role, commandTimeoutMs))
  const parsed = seeds.map(s => new URL(s))
  const nodes: ClusterNode[] = parsed.map(u => ({ host: u.hostname, port: Number(u.port === '' ? 6379 : u.port) }))
  const first = parsed[0]
  const { retryStrategy, autoResubscribe, ...redisOptions } = options(role, commandTimeoutMs)
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    // One subscriber connection per master: sharded channels live on their slot's shard.
    shardedSubscribers: role === 'subscriber',
    clusterRetryStrategy: retryStrategy,
    redisOptions: {
      ...redisOptions,
      ...(first.username !== '' ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password !== '' ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {})
    }
  })
}
