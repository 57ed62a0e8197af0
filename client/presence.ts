// The client's copy of its project's peers, kept current by rev (PROTOCOL.md §3 "Delivery").
import type { LeaveReason, Peer, PresenceFrame } from './protocol.ts'

/** A change to the list, reported as the matching client event. */
export type Change =
  | { kind: 'joined', peer: Peer }
  | { kind: 'left', peerId: string, reason: LeaveReason | 'unknown', peer: Peer }
  | { kind: 'updated', peer: Peer }

export interface Received {
  changes: Change[]
  /** True when the list can no longer be trusted: the caller asks `peers` and calls `replace`. */
  gap: boolean
}

/**
 * Events arrive in rev order, so the stream's rev only grows: an event at or below the last
 * one seen means the cluster lost its data and `rev` restarted, which is a gap like any other.
 * While a `peers` request is out, events are held and replayed above the reply's rev.
 */
export class PeerList {
  readonly peers = new Map<string, Peer>()
  rev = 0
  #last = 0
  #held: PresenceFrame[] | undefined
  #self: string

  constructor (self = '') { this.#self = self }

  /**
   * A welcome or `peers` reply: the whole list at `rev`. Returns what changed, then what the
   * events held meanwhile changed; `gap` when those events already show a new gap.
   */
  replace (list: Peer[], rev: number, self: string = this.#self): Received {
    this.#self = self
    const changes: Change[] = []
    const next = new Map<string, Peer>()
    for (const peer of list) if (peer.peerId !== self) next.set(peer.peerId, peer)
    for (const [id, old] of this.peers) {
      if (!next.has(id)) changes.push({ kind: 'left', peerId: id, reason: 'unknown', peer: old })
    }
    for (const [id, peer] of next) {
      const old = this.peers.get(id)
      if (old === undefined) changes.push({ kind: 'joined', peer })
      else if (JSON.stringify(old) !== JSON.stringify(peer)) changes.push({ kind: 'updated', peer })
    }
    this.peers.clear()
    for (const [id, peer] of next) this.peers.set(id, peer)
    this.rev = rev
    this.#last = rev
    // Events held while the reply was awaited: those at or below its rev are in it already.
    const held = (this.#held ?? []).filter(e => e.rev > rev)
    this.#held = undefined
    const replayed = this.#replay(held)
    return { changes: [...changes, ...replayed.changes], gap: replayed.gap }
  }

  /** True while a `peers` reply is awaited. */
  get resyncing (): boolean { return this.#held !== undefined }

  /** Forgets the pending resync (the `peers` request failed): the next event will ask again. */
  abandonResync (): void {
    this.#held = undefined
    this.rev = 0
    this.#last = 0
  }

  receive (event: PresenceFrame): Received {
    if (this.#held !== undefined) {
      this.#held.push(event)
      return { changes: [], gap: false }
    }
    return this.#one(event)
  }

  #replay (events: PresenceFrame[]): Received {
    const changes: Change[] = []
    for (let i = 0; i < events.length; i++) {
      const got = this.#one(events[i])
      changes.push(...got.changes)
      if (got.gap) {
        this.#held = events.slice(i + 1)
        return { changes, gap: true }
      }
    }
    return { changes, gap: false }
  }

  #one (event: PresenceFrame): Received {
    const restarted = event.rev <= this.#last
    this.#last = event.rev
    if (restarted || event.rev > this.rev + 1) {
      this.#held = []
      return { changes: [], gap: true }
    }
    if (event.rev <= this.rev) return { changes: [], gap: false }
    this.rev = event.rev
    return { changes: this.#apply(event), gap: false }
  }

  #apply (event: PresenceFrame): Change[] {
    if (event.type === 'peer-left') {
      const peer = this.peers.get(event.peerId)
      // A peer we never listed (this client's own earlier connection) leaves silently.
      if (peer === undefined) return []
      this.peers.delete(event.peerId)
      return [{ kind: 'left', peerId: event.peerId, reason: event.reason, peer }]
    }
    const peer = event.peer
    // Our own meta change is reported, but we are not one of "the others".
    if (peer.peerId !== this.#self) this.peers.set(peer.peerId, peer)
    return [{ kind: event.type === 'peer-joined' ? 'joined' : 'updated', peer }]
  }
}
