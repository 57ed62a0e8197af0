import type { PresenceSource } from '../bus/bus.ts'
import type { LeaveReason } from '../codes.ts'
import { keys, parseEntry, projectKeys } from '../redis/keys.ts'
import type { RedisLink } from '../redis/link.ts'
import { Liveness } from './redis-liveness.ts'
import { LocalPeers } from './redis-local.ts'
import { Replica, type Snapshot } from './redis-replica.ts'
import { parsePeers } from '../peer-json.ts'
import type {
  AdmissionLimits, JoinOutcome, ListOutcome, Peer, PresenceEvent, PresenceStore, UpdateOutcome
} from './store.ts'

export interface RedisPresenceOptions {
  nodeId: string
  presenceTtlMs: number
  log?: { warn (obj: object, msg?: string): void, info (obj: object, msg?: string): void }
}

const unavailable = { ok: false as const, code: 'unavailable' as const, message: 'the cluster is unreachable' }

/**
 * Presence in Redis (DESIGN.md "Redis data model"). Redis is the truth; this node keeps its
 * own peers (to re-assert them whenever Redis lost them) and a replica of each project it
 * serves (to route and list without a round trip). A leave that could not reach Redis is
 * kept and replayed once it is back, so no peer of a live node stays listed.
 */
export class RedisPresence implements PresenceStore {
  readonly #link: RedisLink
  readonly #nodeId: string
  readonly #log: RedisPresenceOptions['log']
  readonly #liveness: Liveness
  readonly #local = new LocalPeers()
  readonly #replicas = new Map<string, Replica>()
  /**
   * Events heard for a project whose first local join is still in flight: a join elsewhere,
   * committed just after ours, can be heard before our own reply arrives (replies and
   * messages travel on different connections), and must not be lost to the new replica.
   */
  readonly #early = new Map<string, { joins: number, events: Array<{ event: PresenceEvent, source: PresenceSource | undefined }> }>()
  /** The highest rev this node saw committed per project: a replica below it is behind. */
  readonly #floor = new Map<string, number>()
  readonly #orphans: Array<{ projectId: string, peerId: string, userId: string, reason: LeaveReason }> = []

  constructor (link: RedisLink, opts: RedisPresenceOptions) {
    this.#link = link
    this.#nodeId = opts.nodeId
    this.#log = opts.log
    this.#liveness = new Liveness(link, { ...opts, onLost: () => this.#rebuild() })
    link.onRecover(() => this.#recover())
  }

  /** The time of the last successful liveness refresh (ms since epoch), for metrics. */
  get lastRefreshAt (): number { return this.#liveness.lastRefreshAt }

  start (): void { this.#liveness.start() }

  async join (projectId: string, peer: Peer, nodeId: string, limits: AdmissionLimits): Promise<JoinOutcome> {
    if (!this.isAvailable()) return unavailable
    const link = this.#link
    const instance = nodeId === this.#nodeId ? this.#liveness.instance : nodeId
    // Even with a replica now: its last local peer may leave (and drop it) before our reply.
    const early = this.#expectReplica(projectId)
    try {
      // Registered before the join, so a sweeper of this node always finds the project.
      await Promise.all([
        link.call('sadd', () => link.cmd.sadd(keys.nodeProjects(instance), projectId)),
        link.call('sadd', () => link.cmd.sadd(keys.nodeUsers(instance), peer.userId))
      ])
      const reserved = await link.script('reserveUser', [keys.user(peer.userId)], [peer.peerId, instance, limits.maxConnectionsPerUser])
      if (reserved !== 1) {
        return { ok: false, code: 'too_many_connections', message: `user already holds ${limits.maxConnectionsPerUser} connections` }
      }
      const json = JSON.stringify(peer)
      const res = await link.script('join', projectKeys(projectId), [projectId, peer.peerId, instance, json, limits.maxPeersPerProject]) as [number, number, string, string[]]
      if (res[0] !== 1) {
        await link.call('hdel', () => link.cmd.hdel(keys.user(peer.userId), peer.peerId))
        return { ok: false, code: 'project_full', message: `project already holds ${res[1]} peers` }
      }
      const [, rev, epoch, others] = res
      this.#local.add(projectId, peer)
      this.#raise(projectId, rev)
      if (!this.#replicas.has(projectId)) {
        const replica = new Replica({ rev, epoch, entries: [...others, `${nodeId}|${json}`] })
        this.#replicas.set(projectId, replica)
        for (const e of early.events) this.observe(projectId, e.event, e.source)
      }
      return { ok: true, peers: parsePeers(others.map(e => parseEntry(e).json)), rev }
    } catch (err) {
      // The join may or may not have happened: undo it once Redis answers.
      this.#orphans.push({ projectId, peerId: peer.peerId, userId: peer.userId, reason: 'closed' })
      this.#link.degraded()
      this.#log?.warn({ err, projectId }, 'join failed')
      return unavailable
    } finally {
      if (--early.joins === 0) this.#early.delete(projectId)
    }
  }

  #expectReplica (projectId: string): { joins: number, events: Array<{ event: PresenceEvent, source: PresenceSource | undefined }> } {
    let early = this.#early.get(projectId)
    if (early === undefined) this.#early.set(projectId, early = { joins: 0, events: [] })
    early.joins++
    return early
  }

  async update (projectId: string, peer: Peer): Promise<UpdateOutcome> {
    if (!this.isAvailable()) return unavailable
    try {
      const res = await this.#link.script('update', projectKeys(projectId), [projectId, peer.peerId, this.#liveness.instance, JSON.stringify(peer)]) as number[]
      if (res[0] !== 1) {
        // Swept while this node was cut off: put it back; the client may retry.
        this.#local.reassert(this.#link, this.#liveness.instance).catch(() => {})
        return { ok: false, code: 'unavailable', message: 'this peer is being re-announced; retry' }
      }
      this.#local.set(projectId, peer)
      this.#raise(projectId, res[1])
      return { ok: true, rev: res[1] }
    } catch {
      return unavailable
    }
  }

  async leave (projectId: string, peerId: string, reason: LeaveReason): Promise<void> {
    const peer = this.#local.delete(projectId, peerId)
    if (peer === undefined) return
    // No local peer left: nothing keeps this node's replica of the project current.
    if (!this.#local.projects.has(projectId)) this.forget(projectId)
    const orphan = { projectId, peerId, userId: peer.userId, reason }
    if (!this.isAvailable()) {
      this.#orphans.push(orphan)
      return
    }
    try {
      await this.#remove(orphan)
    } catch (err) {
      // Replayed once the link recovers, so this live node's peer never stays listed.
      this.#orphans.push(orphan)
      this.#link.degraded()
      throw err
    }
  }

  async list (projectId: string): Promise<ListOutcome> {
    if (!this.isAvailable()) return unavailable
    const replica = this.#replicas.get(projectId)
    if (replica !== undefined && !replica.stale && replica.rev >= (this.#floor.get(projectId) ?? 0)) {
      return { ok: true, peers: replica.list(), rev: replica.rev }
    }
    try {
      const snap = await this.#read(projectId)
      return { ok: true, peers: new Replica(snap).list(), rev: snap.rev }
    } catch {
      return unavailable
    }
  }

  locate (projectId: string, peerId: string): string | undefined {
    return this.#replicas.get(projectId)?.peers.get(peerId)?.nodeId
  }

  observe (projectId: string, event: PresenceEvent, source?: PresenceSource): void {
    const replica = this.#replicas.get(projectId)
    if (replica === undefined) this.#early.get(projectId)?.events.push({ event, source })
    else if (replica.apply(event, source)) this.#resync(projectId, replica)
  }

  forget (projectId: string): void {
    this.#replicas.delete(projectId)
    this.#floor.delete(projectId)
  }

  isAvailable (): boolean { return this.#link.available }

  /** Local peers, projects and replicas tracked; lets tests prove churn leaves nothing behind. */
  get size (): number { return this.#local.projects.size + this.#local.users.size + this.#replicas.size }

  /** Graceful shutdown: this node's peers leave at once (`closed`), then the node itself. */
  async close (): Promise<void> {
    this.#liveness.stop()
    const link = this.#link
    if (link.available) {
      const leaves: Array<Promise<void>> = []
      for (const [projectId, peers] of this.#local.projects) {
        for (const peerId of Array.from(peers.keys())) leaves.push(this.leave(projectId, peerId, 'closed').catch(() => {}))
      }
      await Promise.all(leaves)
      await Promise.all([
        link.call('zrem', () => link.cmd.zrem(keys.nodes, this.#liveness.instance)),
        link.call('del', () => link.cmd.del(keys.nodeProjects(this.#liveness.instance), keys.nodeUsers(this.#liveness.instance)))
      ]).catch(() => {})
    }
    link.close()
  }

  async #remove (o: { projectId: string, peerId: string, userId: string, reason: LeaveReason }): Promise<void> {
    const link = this.#link
    await link.script('leave', projectKeys(o.projectId), [o.projectId, o.reason, o.peerId])
    await link.call('hdel', () => link.cmd.hdel(keys.user(o.userId), o.peerId))
    // The last local peer of a project or user: a sweeper of this node need not look there.
    if (!this.#local.projects.has(o.projectId)) await link.call('srem', () => link.cmd.srem(keys.nodeProjects(this.#liveness.instance), o.projectId))
    if (!this.#local.users.has(o.userId)) await link.call('srem', () => link.cmd.srem(keys.nodeUsers(this.#liveness.instance), o.userId))
  }

  #raise (projectId: string, rev: number): void {
    if (rev > (this.#floor.get(projectId) ?? 0)) this.#floor.set(projectId, rev)
  }

  async #read (projectId: string): Promise<Snapshot> {
    const [rev, epoch, entries] = await this.#link.script('read', projectKeys(projectId), []) as [string, string, string[]]
    return { rev: Number(rev), epoch, entries }
  }

  #resync (projectId: string, replica: Replica): void {
    if (replica.stale) return
    replica.begin()
    this.#read(projectId).then(snap => {
      if (this.#replicas.get(projectId) === replica) replica.settle(snap)
    }, () => { replica.abandon() })
  }

  /** The link is back: re-register (re-asserting if Redis lost us), replay leaves, resync replicas. */
  async #recover (): Promise<void> {
    if (await this.#liveness.refresh()) await this.#local.reassert(this.#link, this.#liveness.instance)
    this.#liveness.reconnected()
    while (this.#orphans.length > 0) {
      await this.#remove(this.#orphans[0])
      this.#orphans.shift()
    }
    await this.#resyncAll()
  }

  /** Redis lost this node (data lost, or swept while cut off): put its peers back, re-read what others had. */
  async #rebuild (): Promise<void> {
    await this.#local.reassert(this.#link, this.#liveness.instance)
    await this.#resyncAll()
  }

  async #resyncAll (): Promise<void> {
    await Promise.all(Array.from(this.#replicas, async ([projectId, replica]) => {
      replica.begin()
      try {
        replica.settle(await this.#read(projectId))
      } catch (err) {
        replica.abandon()
        throw err
      }
    }))
  }
}
