// The client's public options and events.
import type { RegistryError } from './errors.ts'
import type { LeaveReason, Peer } from './protocol.ts'
import type { SocketConstructor } from './socket.ts'

export interface ReconnectOptions {
  /** First delay; each attempt doubles it, up to `maxDelayMs`, with jitter. Default 500. */
  minDelayMs?: number
  /** Default 30000. */
  maxDelayMs?: number
  /** Attempts before giving up with a `close` event. Default: no limit. */
  maxAttempts?: number
}

export interface ConnectOptions {
  /** The registry's base URL (http, https, ws or wss), including any mount prefix. */
  url: string
  project: string
  /** A fixed token; without `getToken` the session ends when it expires (close 4001). */
  token?: string
  /** Asked for a token at every connection and before the current one expires. */
  getToken?: () => string | Promise<string>
  /** A WebSocket class; default: the global one, else Node's `ws`. */
  WebSocket?: SocketConstructor
  /** Send the token in `Authorization` rather than `?access_token=`; default true for `ws`. */
  authHeader?: boolean
  /** Wait for an `ack` (or any reply) this long. Default 10000. */
  requestTimeoutMs?: number
  /** Wait for `welcome` this long per attempt. Default 10000. */
  connectTimeoutMs?: number
  /** Refresh the token this long before it expires (half its life when shorter). Default 30000. */
  refreshBeforeMs?: number
  /** `false` turns reconnection off. */
  reconnect?: false | ReconnectOptions
  /** Used to learn why a browser's upgrade failed. Default: the global fetch. */
  fetch?: typeof fetch
}

export interface ClientEvents {
  signal: { from: string, data: unknown }
  broadcast: { from: string, data: unknown }
  'peer-joined': Peer
  /** `unknown`: the peer was missing from a fresh list (after a gap or a reconnect). */
  'peer-left': { peerId: string, reason: LeaveReason | 'unknown', peer: Peer }
  /** Also fired for this client's own `setMeta`. */
  'peer-updated': Peer
  reconnecting: { attempt: number, delayMs: number, error: RegistryError }
  reconnected: { peerId: string, previousPeerId: string }
  /** Final: no reconnect follows. `error` is absent after `close()`. */
  close: { code: number, reason: string, error?: RegistryError }
  /** A failure no promise reports: an unanswered `error` frame, a failed token refresh. */
  error: RegistryError
}

export type ClientState = 'open' | 'reconnecting' | 'closed'
