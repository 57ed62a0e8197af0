// The wire contract (PROTOCOL.md §3) as plain types, written apart from services/frames.ts so
// the browser build never pulls TypeBox or server code; test/client-types.test.ts proves at
// compile time that both sides describe the same frames. services/codes.ts takes its code
// unions from here.

export type LeaveReason = 'closed' | 'timeout' | 'kicked'

/** Codes of `error` frames (PROTOCOL.md §3). */
export type FrameErrorCode =
  | 'invalid_frame'
  | 'peer_not_found'
  | 'rate_limited'
  | 'unauthorized'
  | 'unavailable'
  | 'internal'

/** Codes of refused upgrades (PROTOCOL.md §2). */
export type RefusalCode =
  | 'origin_not_allowed'
  | 'unauthorized'
  | 'invalid_project'
  | 'forbidden'
  | 'unavailable'
  | 'too_many_connections'
  | 'project_full'
  | 'not_found'
  | 'upgrade_required'
  | 'bad_request'

export interface Peer {
  peerId: string
  userId: string
  name?: string
  meta: Record<string, unknown>
  /** ISO-8601 time the peer connected. */
  connectedAt: string
}

export interface WireLimits {
  maxFrameBytes: number
  maxMetaBytes: number
  rateLimitPerSec: number
  rateLimitBurst: number
  maxBufferedBytes: number
}

export interface WelcomeFrame { type: 'welcome', peerId: string, projectId: string, peers: Peer[], rev: number, heartbeatMs: number, limits: WireLimits }
export interface PeerJoinedFrame { type: 'peer-joined', peer: Peer, rev: number }
export interface PeerLeftFrame { type: 'peer-left', peerId: string, reason: LeaveReason, rev: number }
export interface PeerUpdatedFrame { type: 'peer-updated', peer: Peer, rev: number }
export interface SignalFrame { type: 'signal', from: string, data: unknown }
export interface BroadcastFrame { type: 'broadcast', from: string, data: unknown }
export interface PeersFrame { type: 'peers', id?: string, peers: Peer[], rev: number }
export interface AckFrame { type: 'ack', id: string }
export interface PongFrame { type: 'pong', id?: string }
export interface ErrorFrame { type: 'error', id?: string, code: FrameErrorCode, message: string }

export type PresenceFrame = PeerJoinedFrame | PeerLeftFrame | PeerUpdatedFrame
export type ServerFrame =
  | WelcomeFrame | PresenceFrame | SignalFrame | BroadcastFrame
  | PeersFrame | AckFrame | PongFrame | ErrorFrame

export type ClientFrame =
  | { type: 'signal', to: string, data: unknown, id?: string }
  | { type: 'broadcast', data: unknown, id?: string }
  | { type: 'peers', id?: string }
  | { type: 'meta', meta: Record<string, unknown>, id?: string }
  | { type: 'auth', token: string, id?: string }
  | { type: 'ping', id?: string }

/** Close codes the client reacts to (PROTOCOL.md §4). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  abnormal: 1006,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  tokenExpired: 4001,
  projectRevoked: 4003,
  slowConsumer: 4009
} as const
