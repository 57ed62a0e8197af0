import { randomBytes } from 'node:crypto'
import { keys, projectKeys } from '../redis/keys.ts'
import type { RedisLink } from '../redis/link.ts'

export interface LivenessOptions {
  nodeId: string
  presenceTtlMs: number
  /** The node was missing from `wsp:nodes` (swept, or Redis lost its data) and registered anew: re-assert every local peer. */
  onLost: () => Promise<void>
  log?: { warn (obj: object, msg?: string): void, info (obj: object, msg?: string): void }
}

/**
 * Node liveness (DESIGN.md "Redis data model"): the node re-adds its instance to `wsp:nodes`
 * every TTL/3, and checks every min(1 s, TTL/5) for instances whose entry expired. Whichever
 * node claims an expired instance cleans it up (under a lease another node takes over if it
 * dies), and the sweep scripts only announce peers still listed, so each `peer-left timeout`
 * happens once however many nodes sweep.
 */
export class Liveness {
  readonly #link: RedisLink
  readonly #opts: LivenessOptions
  #refreshTimer: NodeJS.Timeout | undefined
  #sweepTimer: NodeJS.Timeout | undefined
  /** After a (re)connection, other live nodes get one refresh interval to re-register before we judge them. */
  #sweepFrom = 0
  #sweeping = false
  lastRefreshAt = 0
  /** What this node is registered as; renewed whenever Redis lost it. */
  instance: string

  constructor (link: RedisLink, opts: LivenessOptions) {
    this.#link = link
    this.#opts = opts
    this.instance = newInstance(opts.nodeId)
  }

  start (): void {
    const ttl = this.#opts.presenceTtlMs
    this.#refreshTimer = setInterval(() => { this.#tick() }, Math.max(10, Math.floor(ttl / 3)))
    // The sweep's cheap read doubles as a health check: a Redis that stopped answering
    // without closing the socket is noticed within ~2 s, not one refresh interval later.
    this.#sweepTimer = setInterval(() => { this.sweep().catch(() => { this.#link.degraded() }) }, Math.max(10, Math.min(1000, Math.floor(ttl / 5))))
    this.#refreshTimer.unref()
    this.#sweepTimer.unref()
  }

  stop (): void {
    clearInterval(this.#refreshTimer)
    clearInterval(this.#sweepTimer)
  }

  /**
   * Refreshes this node's instance; true when it had been lost, in which case the node is now
   * registered as a new instance and must re-assert its peers under it.
   */
  async refresh (): Promise<boolean> {
    const ttl = this.#opts.presenceTtlMs
    const lost = await this.#link.script('refresh', [keys.nodes], [this.instance, ttl, 0]) === 1
    if (lost) {
      this.instance = newInstance(this.#opts.nodeId)
      await this.#link.script('refresh', [keys.nodes], [this.instance, ttl, 1])
    }
    this.lastRefreshAt = Date.now()
    return lost
  }

  /** Called once the link is back: hold sweeping for one refresh interval. */
  reconnected (): void {
    this.#sweepFrom = Date.now() + Math.floor(this.#opts.presenceTtlMs / 3) + 50
  }

  /** Removes every expired node's peers; resolves with how many peers left. */
  async sweep (): Promise<number> {
    if (this.#sweeping || !this.#link.available || Date.now() < this.#sweepFrom) return 0
    this.#sweeping = true
    try {
      const expired = await this.#link.script('expired', [keys.nodes], []) as string[]
      let count = 0
      for (const member of expired) {
        if (member === this.instance) continue
        const owned = await this.#link.script('claim', [keys.nodes], [member, this.#opts.presenceTtlMs])
        if (owned === 1) count += await this.#cleanup(member.startsWith('~') ? member.slice(1) : member)
      }
      return count
    } finally {
      this.#sweeping = false
    }
  }

  /** Removes a dead instance's presence: its peers leave as `timeout`; then the lease goes. */
  async #cleanup (instance: string): Promise<number> {
    const link = this.#link
    const projects = await link.call('smembers', () => link.cmd.smembers(keys.nodeProjects(instance)))
    let count = 0
    for (const projectId of projects) {
      const gone = await link.script('sweepProject', projectKeys(projectId), [projectId, instance]) as string[]
      count += gone.length
    }
    const users = await link.call('smembers', () => link.cmd.smembers(keys.nodeUsers(instance)))
    await Promise.all(users.map(u => link.script('sweepUser', [keys.user(u)], [instance])))
    await link.call('del', () => link.cmd.del(keys.nodeProjects(instance), keys.nodeUsers(instance)))
    await link.call('zrem', () => link.cmd.zrem(keys.nodes, `~${instance}`))
    this.#opts.log?.info({ deadNode: instance, peers: count }, 'swept a dead node')
    return count
  }

  #tick (): void {
    if (!this.#link.available) return
    this.refresh().then(async (lost) => {
      if (!lost) return
      this.#opts.log?.warn({}, 'this node was missing from wsp:nodes; re-asserting its peers')
      await this.#opts.onLost()
    }).catch(err => {
      this.#opts.log?.warn({ err }, 'liveness refresh failed')
      this.#link.degraded()
    })
  }
}

function newInstance (nodeId: string): string {
  return `${nodeId}~${randomBytes(4).toString('hex')}`
}
