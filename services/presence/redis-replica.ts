import type { PresenceSource } from '../bus/bus.ts'
import { parseEntry } from '../redis/keys.ts'
import { peersOf, type Peer, type PresenceEvent } from './store.ts'

export interface Entry { peer: Peer, nodeId: string }

/** One consistent read of a project: its rev, epoch and `<nodeId>|<peer JSON>` entries. */
export interface Snapshot { rev: number, epoch: string, entries: string[] }

/**
 * This node's copy of one project's membership (DESIGN.md "Presence replica"), so routing a
 * signal, `peers` and the REST list need no Redis round trip. Seeded from the join script's
 * reply, advanced by the project's events in rev order; a gap, or an event of another epoch
 * (the keys were lost and recreated), asks for a fresh snapshot, and events heard while that
 * read is in flight are replayed on top of it.
 */
export class Replica {
  rev: number
  epoch: string
  readonly peers = new Map<string, Entry>()
  #pending: Array<{ event: PresenceEvent, source: PresenceSource | undefined }> | undefined

  constructor (snapshot: Snapshot) {
    this.rev = snapshot.rev
    this.epoch = snapshot.epoch
    this.#fill(snapshot.entries)
  }

  /** True while a snapshot is awaited: the replica may be behind. */
  get stale (): boolean { return this.#pending !== undefined }

  /** Applies an event; true when the replica can no longer trust itself and wants a snapshot. */
  apply (event: PresenceEvent, source: PresenceSource | undefined): boolean {
    if (this.#pending !== undefined) {
      this.#pending.push({ event, source })
      this.#change(event, source)
      return false
    }
    const epoch = source?.epoch ?? this.epoch
    if (epoch === this.epoch && event.rev <= this.rev) return false
    this.#change(event, source)
    const continuous = epoch === this.epoch && event.rev === this.rev + 1
    this.rev = event.rev
    return !continuous
  }

  /** A snapshot is on its way; events until then are kept to replay. */
  begin (): void {
    this.#pending ??= []
  }

  /** The snapshot arrived: replace, then replay the newer events of the same epoch. */
  settle (snapshot: Snapshot): void {
    const pending = this.#pending ?? []
    this.#pending = undefined
    this.rev = snapshot.rev
    this.epoch = snapshot.epoch
    this.peers.clear()
    this.#fill(snapshot.entries)
    for (const { event, source } of pending) {
      if ((source?.epoch ?? this.epoch) !== this.epoch || event.rev <= this.rev) continue
      this.#change(event, source)
      this.rev = event.rev
    }
  }

  /** The snapshot could not be read: keep the best-effort view and try again later. */
  abandon (): void {
    this.#pending = undefined
  }

  list (): Peer[] {
    return peersOf(this.peers)
  }

  #change (event: PresenceEvent, source: PresenceSource | undefined): void {
    if (event.type === 'peer-left') this.peers.delete(event.peerId)
    else this.peers.set(event.peer.peerId, { peer: event.peer, nodeId: source?.nodeId ?? this.peers.get(event.peer.peerId)?.nodeId ?? '' })
  }

  #fill (entries: string[]): void {
    for (const value of entries) {
      const { nodeId, json } = parseEntry(value)
      const peer = JSON.parse(json) as Peer
      this.peers.set(peer.peerId, { peer, nodeId })
    }
  }
}
