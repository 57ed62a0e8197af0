import type { PresenceEvent } from '../presence/store.ts'

/**
 * What travels between nodes. Frames are serialized once by the sending node, so a receiving
 * node writes the same text to each of its sockets without touching `data`.
 */
export type BusMessage =
  | { kind: 'signal', projectId: string, to: string, frame: string }
  | { kind: 'broadcast', projectId: string, from: string, origin: string, frame: string }
  | { kind: 'presence', projectId: string, event: PresenceEvent, source?: PresenceSource }

/**
 * Where a presence event was made, for a store that keeps a local replica: `epoch` changes
 * when the project's keys were recreated (its rev restarted), `nodeId` holds the peer.
 */
export interface PresenceSource { epoch: string, nodeId: string }

export type BusHandler = (msg: BusMessage) => void

/** Delivery between nodes. Publishing never waits: a message is handed over now or refused. */
export interface Bus {
  /** Hands `msg` to node `nodeId`; false when the bus is unreachable (then it is never delivered). */
  toNode (nodeId: string, msg: BusMessage): boolean
  /** Hands `msg` to every node subscribed to `projectId`, the sender's included; false as above. */
  toProject (projectId: string, msg: BusMessage): boolean
  /** Resolves once messages sent to `nodeId` reach `handler`. */
  subscribeNode (nodeId: string, handler: BusHandler): Promise<void>
  /** Resolves once messages of `projectId` reach `handler`. */
  subscribeProject (projectId: string, handler: BusHandler): Promise<void>
  unsubscribeProject (projectId: string, handler: BusHandler): Promise<void>
  unsubscribeNode (nodeId: string, handler: BusHandler): Promise<void>
  close (): Promise<void>
}
