import { Close, type LeaveReason } from './codes.ts'
import type { Peer } from './frames.ts'
import { TokenBucket } from './token-bucket.ts'
import type { ResolvedLimits } from './options.ts'

/** The little the registry needs of a socket; the hub never sees `ws` (STYLE.md §1). */
export interface PeerSocket {
  /** `deferrable`: a presence event, which may wait a few ms to leave with others. */
  send (data: string | Buffer, deferrable?: boolean): void
  close (code: number, reason?: string): void
  terminate (): void
  ping (): void
  readonly bufferedAmount: number
}

interface Queued { data: string | Buffer, rev: number }

const maxTimer = 2 ** 31 - 1
/** Shared by every session that holds no welcome list: before its join, and once welcomed. */
export const noPeers: readonly Peer[] = Object.freeze([])

/**
 * One connection: its peer, its socket once upgraded, and the per-connection guards of
 * PROTOCOL.md §4. Frames for it that arrive before the upgrade completes wait in an outbox.
 */
export class Session {
  peer: Peer
  readonly projectId: string
  readonly openedAt: number
  /** The peer id as a JSON string, serialized once for every frame relayed from this peer. */
  readonly peerIdJson: string
  socket: PeerSocket | undefined
  /** The rev its welcome reflects: events at or below it are already in the welcome. */
  rev = 0
  welcomePeers: readonly Peer[] = noPeers
  /** Token expiry (ms since epoch) including the clock tolerance. */
  expiresAt: number
  alive = true
  invalidRun = 0
  closed = false
  leaveReason: LeaveReason = 'closed'
  /** Serializes frames whose handling awaits, so replies and the final leave keep order. */
  pending: Promise<void> | undefined
  readonly #limits: ResolvedLimits
  #bucket: TokenBucket | undefined
  #outbox: Queued[] | undefined = []
  #expiry: NodeJS.Timeout | undefined
  #killer: NodeJS.Timeout | undefined

  constructor (peer: Peer, projectId: string, expiresAt: number, limits: ResolvedLimits, now: number) {
    this.peer = peer
    this.peerIdJson = JSON.stringify(peer.peerId)
    this.projectId = projectId
    this.expiresAt = expiresAt
    this.openedAt = now
    this.#limits = limits
  }

  /**
   * PROTOCOL.md §4 rate limit for one frame. The bucket is made at the first frame, full, as
   * one made at the upgrade would be by then: an idle peer holds none.
   */
  take (now: number): 'ok' | 'drop' | 'close' {
    const limits = this.#limits
    this.#bucket ??= new TokenBucket(limits.rateLimitPerSec, limits.rateLimitBurst, now)
    return this.#bucket.take(now, limits.rateLimitCloseAfterMs)
  }

  get peerId (): string { return this.peer.peerId }
  get userId (): string { return this.peer.userId }

  /**
   * Writes now, or queues until the upgrade completes. `rev` tags presence events. False when
   * the frame was dropped (closed, or an event its welcome already reflects), for metrics.
   */
  deliver (data: string | Buffer, rev = 0): boolean {
    if (this.closed) return false
    if (this.socket === undefined) {
      this.#outbox?.push({ data, rev })
      return true
    }
    if (!this.#fresh(rev)) return false
    this.socket.send(data, rev !== 0)
    return true
  }

  /** Opens the socket side: `welcome` first, then whatever arrived meanwhile and is newer. */
  attach (socket: PeerSocket, welcome: string): void {
    this.socket = socket
    socket.send(welcome)
    const queued = this.#outbox ?? []
    this.#outbox = undefined
    for (const q of queued) if (this.#fresh(q.rev)) socket.send(q.data)
  }

  /**
   * Events published before this peer's join may reach it after its welcome (a reply and a
   * subscription travel apart); they are already in the welcome. The peer's own join event is
   * the last of them on the ordered channel, so filtering stops there: a rev that restarts
   * lower after the cluster lost its data still gets through.
   */
  #fresh (rev: number): boolean {
    if (rev === 0 || this.rev === 0 || rev > this.rev) return true
    if (rev === this.rev) this.rev = 0
    return false
  }

  /** Arms the 4001 close for `expiresAt`, replacing an earlier one. */
  armExpiry (now: number): void {
    if (this.#expiry !== undefined) clearTimeout(this.#expiry)
    // Whole seconds, rounded up: Node keeps one timer list per distinct delay, and a delay to
    // the millisecond gave nearly every session a list of its own. A second late is within
    // what §4 promises (closed once now > exp + tolerance); never early.
    const delay = Math.ceil(Math.max(0, this.expiresAt - now) / 1000) * 1000
    this.#expiry = setTimeout(() => {
      this.#expiry = undefined
      if (Date.now() >= this.expiresAt) this.kick(Close.tokenExpired, 'token expired')
      else this.armExpiry(Date.now())
    }, Math.min(delay, maxTimer))
  }

  /** The server ends this session with `code`; its peer leaves as `reason`. */
  kick (code: number, message: string, reason: LeaveReason = 'kicked'): void {
    if (this.closed || this.socket === undefined) return
    this.leaveReason = reason
    this.socket.close(code, message)
    if (code === Close.slowConsumer) {
      // A consumer too slow to read is too slow to finish the close handshake (§4).
      this.#killer = setTimeout(() => this.socket?.terminate(), 1000)
    }
    this.closed = true
  }

  /** Called once, when the socket is gone: drops every timer and queued frame. */
  dispose (): void {
    this.closed = true
    this.#outbox = undefined
    if (this.#expiry !== undefined) clearTimeout(this.#expiry)
    if (this.#killer !== undefined) clearTimeout(this.#killer)
    this.#expiry = this.#killer = undefined
  }
}
