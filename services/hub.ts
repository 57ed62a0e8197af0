import { randomFillSync } from 'node:crypto'
import type { Bus, BusHandler, BusMessage } from './bus/bus.ts'
import { Close, type LeaveReason, type Outcome, type Refusal } from './codes.ts'
import type { Peer } from './frames.ts'
import type { ResolvedLimits } from './options.ts'
import type { JoinOutcome, PresenceStore } from './presence/store.ts'
import type { RegistryUser } from './auth.ts'
import { Session, noPeers, type PeerSocket } from './session.ts'
import { peerListJson } from './peer-json.ts'
import { Heartbeat } from './heartbeat.ts'
import { handleFrame, type FrameContext } from './router.ts'

/** A pino-compatible logger, so services need no Fastify (STYLE.md §1). */
export interface Log {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
  debug (obj: object, msg?: string): void
}

/** Optional counters for metrics; the hub calls them, knowing nothing of Prometheus. */
export interface HubObserver {
  frameIn? (type: string): void
  frameOut? (type: string, count: number): void
  error? (code: string): void
  close? (code: number): void
  slowConsumer? (): void
  /** Seconds from a sampled signal/broadcast frame reaching the hub to its last socket write. */
  relayed? (seconds: number): void
}

/** The outcome of every accepted relay, shared: a relay allocates nothing it need not. */
const accepted: Outcome = Object.freeze({ ok: true })

/** One relayed frame in this many is timed: a clock read per frame is not free at 100k/s. */
const relaySampleEvery = 64

export interface HubDeps extends Omit<FrameContext, 'hub' | 'now'> {
  now?: () => number
  nodeId: string
  presence: PresenceStore
  bus: Bus
  limits: ResolvedLimits
  log: Log
  observer?: HubObserver
}

export type Admission = { ok: true, session: Session } | { ok: false, refusal: Refusal }

/**
 * Owns this node's sockets: admits peers, relays frames locally or over the Bus, fans out
 * presence events, and runs the heartbeat. Knows nothing of Redis or of `ws`.
 */
export class Hub {
  readonly nodeId: string
  readonly limits: ResolvedLimits
  readonly presence: PresenceStore
  readonly bus: Bus
  readonly log: Log
  readonly observer: HubObserver
  readonly #ctx: FrameContext
  readonly #projects = new Map<string, Map<string, Session>>()
  readonly #onProject: BusHandler = (msg) => this.#fromProject(msg)
  readonly #onNode: BusHandler = (msg) => this.#fromNode(msg)
  #sessions = 0
  /** Sessions attached to a socket and not yet released. */
  #connections = 0
  #sampleCountdown = relaySampleEvery
  /** performance.now() when the frame being handled was picked for timing, else 0. */
  #sampledAt = 0
  readonly #heartbeat: Heartbeat<Session>
  /** The part of every welcome that only the configuration decides, serialized once. */
  readonly #welcomeTail: string
  #draining = false

  constructor (deps: HubDeps) {
    this.nodeId = deps.nodeId
    this.limits = deps.limits
    this.presence = deps.presence
    this.bus = deps.bus
    this.log = deps.log
    this.observer = deps.observer ?? {}
    this.#ctx = { hub: this, verify: deps.verify, authorize: deps.authorize, now: deps.now ?? Date.now }
    this.#heartbeat = new Heartbeat(this.limits.heartbeatMs, s => this.#beat(s))
    const { heartbeatMs, maxFrameBytes, maxMetaBytes, rateLimitPerSec, rateLimitBurst, maxBufferedBytes } = this.limits
    const limits = { maxFrameBytes, maxMetaBytes, rateLimitPerSec, rateLimitBurst, maxBufferedBytes }
    this.#welcomeTail = `,"heartbeatMs":${heartbeatMs},"limits":${JSON.stringify(limits)}}`
  }

  async start (): Promise<void> {
    await this.bus.subscribeNode(this.nodeId, this.#onNode)
  }

  /** Local sessions, pending ones included. */
  get size (): number { return this.#sessions }
  /** Local sessions with an open socket (upgraded, not yet released). */
  get connections (): number { return this.#connections }
  get draining (): boolean { return this.#draining }
  /** Projects with local sessions; lets tests prove churn leaves nothing behind. */
  get projectCount (): number { return this.#projects.size }
  get heartbeatRunning (): boolean { return this.#heartbeat.running }

  /**
   * Refusals #5–#7 of PROTOCOL.md §2, then the join. The session exists (and receives
   * frames into its outbox) from before the join, so nothing sent to it is lost to setup.
   * Synchronous when nothing needs waiting for: a project this node already serves, and a
   * store in this process.
   */
  admit (user: RegistryUser, projectId: string): Admission | Promise<Admission> {
    if (this.#draining || !this.presence.isAvailable()) {
      return { ok: false, refusal: { code: 'unavailable', message: 'the registry cannot take peers now' } }
    }
    const now = this.#ctx.now()
    const peer: Peer = { peerId: newPeerId(), userId: user.sub, meta: {}, connectedAt: new Date(now).toISOString() }
    if (user.name !== undefined) peer.name = user.name
    const session = new Session(peer, projectId, user.exp * 1000 + this.limits.clockToleranceMs, this.limits, now)
    let joined: JoinOutcome | Promise<JoinOutcome>
    try {
      const adding = this.#add(session)
      if (adding !== undefined) return this.#admitLater(session, adding)
      joined = this.presence.join(projectId, peer, this.nodeId, this.limits)
    } catch (err) {
      return this.#admitFailed(session, err)
    }
    if (joined instanceof Promise) return joined.then(j => this.#joined(session, j), err => this.#admitFailed(session, err))
    return this.#joined(session, joined)
  }

  /** The project is new here: its channel is subscribed before the join (no event after the join's rev can be missed). */
  async #admitLater (session: Session, adding: Promise<void>): Promise<Admission> {
    try {
      await adding
      return this.#joined(session, await this.presence.join(session.projectId, session.peer, this.nodeId, this.limits))
    } catch (err) {
      return await this.#admitFailed(session, err)
    }
  }

  #joined (session: Session, joined: JoinOutcome): Admission | Promise<Admission> {
    if (!joined.ok) {
      const refusal = { code: joined.code, message: joined.message }
      return this.#remove(session).then(() => ({ ok: false, refusal }), err => this.#admitFailed(session, err))
    }
    session.rev = joined.rev
    session.welcomePeers = joined.peers
    return { ok: true, session }
  }

  async #admitFailed (session: Session, err: unknown): Promise<Admission> {
    this.log.error({ err, projectId: session.projectId }, 'admission failed')
    await this.#remove(session).catch(() => {})
    return { ok: false, refusal: { code: 'unavailable', message: 'the presence store did not answer' } }
  }

  /** The upgrade completed: `welcome`, then queued frames, then live traffic. */
  attach (session: Session, socket: PeerSocket): void {
    const welcome = `{"type":"welcome","peerId":${session.peerIdJson},"projectId":${JSON.stringify(session.projectId)},"peers":${peerListJson(session.welcomePeers)},"rev":${session.rev}${this.#welcomeTail}`
    session.welcomePeers = noPeers
    session.attach(socket, welcome)
    this.#connections++
    this.observer.frameOut?.('welcome', 1)
    session.armExpiry(this.#ctx.now())
    this.#heartbeat.add(session)
  }

  /** One text or binary message from a session's socket. */
  receive (session: Session, data: Buffer | string, isBinary: boolean): void {
    if (session.closed) return
    if (isBinary) {
      session.kick(Close.unsupportedData, 'binary frames are not supported')
      return
    }
    const text = typeof data === 'string' ? data : data.toString()
    if (session.pending === undefined) {
      if (--this.#sampleCountdown === 0) {
        this.#sampleCountdown = relaySampleEvery
        if (this.observer.relayed !== undefined) this.#sampledAt = performance.now()
      }
      const p = handleFrame(this.#ctx, session, text)
      this.#sampledAt = 0
      if (p !== undefined) this.#chain(session, p)
    } else {
      this.#chain(session, session.pending.then(() => handleFrame(this.#ctx, session, text)))
    }
  }

  /**
   * The socket is gone (or never came): the peer leaves once every frame it sent before
   * closing has been handled (PROTOCOL.md §3 "Delivery").
   */
  release (session: Session, reason?: LeaveReason): Promise<void> {
    const leaveReason = reason ?? session.leaveReason
    session.dispose()
    const done = (session.pending ?? Promise.resolve()).then(async () => {
      await this.presence.leave(session.projectId, session.peerId, leaveReason)
    }).catch(err => {
      this.log.warn({ err, peerId: session.peerId }, 'leave failed; the sweep will remove the peer')
    }).finally(() => this.#remove(session))
    return done
  }

  /** PROTOCOL.md §3 `signal`: local write, or one Bus message to the peer's node. */
  signal (from: Session, to: string, data: unknown): Outcome {
    // One flat string: a concatenation would be flattened again, a copy per frame, when written.
    const frame = JSON.stringify({ type: 'signal', from: from.peerId, data })
    const local = this.#projects.get(from.projectId)?.get(to)
    if (local !== undefined) {
      local.deliver(frame)
      this.#afterWrite(local)
      this.observer.frameOut?.('signal', 1)
      if (this.#sampledAt !== 0) this.#timed()
      return accepted
    }
    const node = this.presence.locate(from.projectId, to)
    if (node === undefined || node === this.nodeId) {
      return { ok: false, code: 'peer_not_found', message: `peer ${to} is not online in this project` }
    }
    if (!this.bus.toNode(node, { kind: 'signal', projectId: from.projectId, to, frame })) {
      return { ok: false, code: 'unavailable', message: 'the cluster is unreachable; the signal was not delivered' }
    }
    return accepted
  }

  /** PROTOCOL.md §3 `broadcast`: serialized once, written to every local peer but the sender. */
  broadcast (from: Session, data: unknown): Outcome {
    const frame = `{"type":"broadcast","from":${from.peerIdJson},"data":${JSON.stringify(data)}}`
    const count = this.#fanOut(from.projectId, frame, from.peerId)
    if (count > 0) this.observer.frameOut?.('broadcast', count)
    if (this.#sampledAt !== 0) this.#timed()
    const sent = this.bus.toProject(from.projectId, { kind: 'broadcast', projectId: from.projectId, from: from.peerId, origin: this.nodeId, frame })
    return sent ? accepted : { ok: false, code: 'unavailable', message: 'the cluster is unreachable; only this node\'s peers got the broadcast' }
  }

  /** Checks a session's buffer after a write; a slow consumer is closed 4009 (§4). */
  #afterWrite (session: Session): void {
    const socket = session.socket
    if (socket !== undefined && !session.closed && socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.log.warn({ peerId: session.peerId, projectId: session.projectId, closeCode: Close.slowConsumer, buffered: socket.bufferedAmount }, 'slow consumer closed')
      this.observer.slowConsumer?.()
      session.kick(Close.slowConsumer, 'slow consumer')
      // §4: it leaves at once, not when its unread close handshake ends (up to 1 s later);
      // the leave on release is then a no-op.
      const pending = session.pending ?? Promise.resolve()
      pending.then(() => this.presence.leave(session.projectId, session.peerId, 'kicked')).catch(err => {
        this.log.warn({ err, peerId: session.peerId }, 'leave failed; the sweep will remove the peer')
      })
    }
  }

  #timed (): void {
    this.observer.relayed?.((performance.now() - this.#sampledAt) / 1000)
    this.#sampledAt = 0
  }

  /**
   * Writes `frame` to the project's local sessions (but `except`), as one shared buffer;
   * returns how many sessions it was handed to.
   */
  #fanOut (projectId: string, frame: string, except: string | undefined, rev = 0): number {
    const sessions = this.#projects.get(projectId)
    if (sessions === undefined) return 0
    if (sessions.size === 1 && except !== undefined && sessions.has(except)) return 0
    const data = Buffer.from(frame)
    let count = 0
    for (const s of sessions.values()) {
      if (s.peerId === except) continue
      if (s.deliver(data, rev)) count++
      this.#afterWrite(s)
    }
    return count
  }

  #fromProject (msg: BusMessage): void {
    if (msg.kind === 'presence') {
      this.presence.observe(msg.projectId, msg.event, msg.source)
      const count = this.#fanOut(msg.projectId, JSON.stringify(msg.event), undefined, msg.event.rev)
      if (count > 0) this.observer.frameOut?.(msg.event.type, count)
    } else if (msg.kind === 'broadcast' && msg.origin !== this.nodeId) {
      const count = this.#fanOut(msg.projectId, msg.frame, msg.from)
      if (count > 0) this.observer.frameOut?.('broadcast', count)
    }
  }

  #fromNode (msg: BusMessage): void {
    if (msg.kind !== 'signal') return
    const target = this.#projects.get(msg.projectId)?.get(msg.to)
    if (target === undefined) return
    target.deliver(msg.frame)
    this.#afterWrite(target)
    this.observer.frameOut?.('signal', 1)
  }

  #chain (session: Session, p: Promise<void>): void {
    const tail = p.catch(err => {
      this.log.error({ err, peerId: session.peerId }, 'frame handling failed')
    }).finally(() => {
      if (session.pending === tail) session.pending = undefined
    })
    session.pending = tail
  }

  /** A promise only when the project is new to this node and its channel must be subscribed. */
  #add (session: Session): Promise<void> | undefined {
    let sessions = this.#projects.get(session.projectId)
    this.#sessions++
    if (sessions === undefined) {
      this.#projects.set(session.projectId, sessions = new Map())
      sessions.set(session.peerId, session)
      // Subscribed before the join, so no event after the join's rev can be missed.
      return this.bus.subscribeProject(session.projectId, this.#onProject)
    }
    sessions.set(session.peerId, session)
    return undefined
  }

  async #remove (session: Session): Promise<void> {
    const sessions = this.#projects.get(session.projectId)
    if (sessions === undefined || !sessions.delete(session.peerId)) return
    this.#sessions--
    if (session.socket !== undefined) this.#connections--
    this.#heartbeat.delete(session)
    if (sessions.size > 0) return
    this.#projects.delete(session.projectId)
    this.presence.forget(session.projectId)
    await this.bus.unsubscribeProject(session.projectId, this.#onProject)
  }

  /** PROTOCOL.md §4 heartbeat: no pong since the previous ping ends the session as `timeout`. */
  #beat (s: Session): void {
    if (s.socket === undefined || s.closed) return
    if (!s.alive) {
      s.leaveReason = 'timeout'
      s.socket.terminate()
      return
    }
    s.alive = false
    s.socket.ping()
  }

  /** Graceful shutdown: refuse new peers, close every socket with 1001 (§4). */
  drain (): void {
    this.#draining = true
    const sockets: PeerSocket[] = []
    for (const sessions of this.#projects.values()) {
      for (const s of sessions.values()) {
        if (s.socket !== undefined && !s.closed) sockets.push(s.socket)
        s.kick(Close.goingAway, 'server shutting down', 'closed')
      }
    }
    // A client that never answers the 1001 would hold server.close(), and so the exit, for
    // ws's 30 s close timeout: cut it after 1 s, as a slow consumer's (§4).
    if (sockets.length > 0) setTimeout(() => { for (const socket of sockets) socket.terminate() }, 1000).unref()
  }

  /** After drain: waits for every session to have left, then stops listening on the Bus. */
  async close (): Promise<void> {
    this.drain()
    const pending: Array<Promise<void>> = []
    for (const sessions of this.#projects.values()) {
      for (const s of sessions.values()) pending.push(this.release(s, 'closed'))
    }
    await Promise.all(pending)
    this.#heartbeat.stop()
    await this.bus.unsubscribeNode(this.nodeId, this.#onNode)
  }
}

/** 16 random bytes per id, drawn from a pool filled 256 ids at a time: one call into the CSPRNG, not one per connection. */
const idBytes = 16
const idPool = Buffer.alloc(idBytes * 256)
let idOffset = idPool.length

function newPeerId (): string {
  if (idOffset === idPool.length) {
    randomFillSync(idPool)
    idOffset = 0
  }
  idOffset += idBytes
  return idPool.toString('base64url', idOffset - idBytes, idOffset)
}
