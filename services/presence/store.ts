import type { Peer } from '../frames.ts'
import type { LeaveReason } from '../codes.ts'
import type { PresenceSource } from '../bus/bus.ts'

export type { Peer }

/**
 * The peers of a project's entries, as the list a welcome or a `peers` reply carries. A loop:
 * `Array.from(map.values(), fn)` takes V8's slow path, ten times the cost, on every join.
 */
export function peersOf (entries: Map<string, { peer: Peer }>): Peer[] {
  const peers: Peer[] = []
  for (const entry of entries.values()) peers.push(entry.peer)
  return peers
}

/** A presence change, numbered by the project's `rev` (PROTOCOL.md §3 "Presence is versioned"). */
export type PresenceEvent =
  | { type: 'peer-joined', peer: Peer, rev: number }
  | { type: 'peer-left', peerId: string, reason: LeaveReason, rev: number }
  | { type: 'peer-updated', peer: Peer, rev: number }

export interface AdmissionLimits { maxPeersPerProject: number, maxConnectionsPerUser: number }

export type JoinOutcome =
  | { ok: true, peers: Peer[], rev: number }
  | { ok: false, code: 'project_full' | 'too_many_connections' | 'unavailable', message: string }

export type ListOutcome =
  | { ok: true, peers: Peer[], rev: number }
  | { ok: false, code: 'unavailable', message: string }

export type UpdateOutcome =
  | { ok: true, rev: number }
  | { ok: false, code: 'unavailable' | 'peer_not_found', message: string }

export interface SweptPeer { projectId: string, peerId: string }

/**
 * Who is online, cluster-wide. Every change is published to the project's subscribers on the
 * Bus as a `presence` message carrying the event with its `rev`, and event order is rev order.
 */
export interface PresenceStore {
  /**
   * Admits `peer` on `nodeId` if, atomically and cluster-wide, neither the project nor the
   * user is at its limit. Gives the project's other peers and the rev of this join: at once
   * where the store is this process's (no await, so a connection takes no extra turns of the
   * microtask queue), else a promise.
   */
  join (projectId: string, peer: Peer, nodeId: string, limits: AdmissionLimits): JoinOutcome | Promise<JoinOutcome>
  /** Replaces a peer's meta and announces `peer-updated`. */
  update (projectId: string, peer: Peer): Promise<UpdateOutcome>
  /** Removes a peer and announces `peer-left` once; a peer already gone is a no-op. */
  leave (projectId: string, peerId: string, reason: LeaveReason): Promise<void>
  /** The project's peers and the rev that list reflects, cluster-wide. */
  list (projectId: string): Promise<ListOutcome>
  /**
   * The node that holds `peerId` in `projectId`, from this node's view, or undefined when the
   * peer is not online. Synchronous because it is consulted for every relayed signal.
   */
  locate (projectId: string, peerId: string): string | undefined
  /** Lets the store's local view follow an event heard on the Bus (a no-op where the store is the truth). */
  observe (projectId: string, event: PresenceEvent, source?: PresenceSource): void
  /** The hub no longer has peers in `projectId`: the store may drop its local view of it. */
  forget (projectId: string): void
  /** True when the store can take changes now (readiness, and refusal #5 of PROTOCOL.md §2). */
  isAvailable (): boolean
  /** Stops timers and releases what the store opened; the node's peers are removed first. */
  close (): Promise<void>
}
