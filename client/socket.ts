// The little the client needs of a WebSocket, satisfied by the browser's and by Node's `ws`.
import { RegistryError, refusalError } from './errors.ts'

/** Handler types checked bivariantly, so both the DOM's and `ws`'s event classes fit. */
type Handler<E> = { bivarianceHack (event: E): void }['bivarianceHack']

export interface SocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  onopen: Handler<{ type: string }> | null
  onmessage: Handler<{ type: string, data: unknown }> | null
  onclose: Handler<{ type: string, code: number, reason: string }> | null
  onerror: Handler<{ type: string, message?: string }> | null
  /** Node's `ws` only: lets the client see the server's pings, which browsers hide. */
  on?: (event: 'ping', listener: () => void) => unknown
  /** Node's `ws` only: drops a dead connection without waiting for a close handshake. */
  terminate?: () => void
}

export type SocketConstructor = new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) => SocketLike

export const OPEN = 1

/**
 * The browser's WebSocket, else Node's `ws` loaded on demand. The module name sits in a
 * variable so bundlers leave the Node-only import alone.
 */
export async function resolveSocket (given: SocketConstructor | undefined): Promise<{ Socket: SocketConstructor, node: boolean }> {
  if (given !== undefined) return { Socket: given, node: false }
  const native = (globalThis as { WebSocket?: SocketConstructor }).WebSocket
  if (native !== undefined) return { Socket: native, node: false }
  const name = 'ws'
  try {
    const mod = await import(name) as { WebSocket?: SocketConstructor, default?: SocketConstructor }
    const Socket = mod.WebSocket ?? mod.default
    if (Socket !== undefined) return { Socket, node: true }
  } catch {}
  throw new RegistryError('connection_failed', 'no WebSocket available: pass the `WebSocket` option (e.g. from the `ws` package)')
}

/** The registry's base URL (any scheme, with its mount prefix) as its ws and http URLs. */
export function endpoints (base: string, project: string): { ws: string, peers: string } {
  const url = new URL(base)
  const secure = url.protocol === 'https:' || url.protocol === 'wss:'
  const path = url.pathname.replace(/\/v1\/ws\/?$/, '').replace(/\/+$/, '')
  const host = url.host
  const p = encodeURIComponent(project)
  return {
    ws: `${secure ? 'wss' : 'ws'}://${host}${path}/v1/ws?project=${p}`,
    peers: `${secure ? 'https' : 'http'}://${host}${path}/v1/projects/${p}/peers`
  }
}

/** The token's `exp` in ms, read without verifying: only to time a refresh. */
export function tokenExpiry (token: string): number | undefined {
  const part = token.split('.')[1]
  if (part === undefined) return undefined
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'))
    const claims = JSON.parse(json) as { exp?: unknown }
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined
  } catch {
    return undefined
  }
}

/** `ws` names a refused upgrade's status in its error message: "Unexpected server response: 401". */
export function statusFromError (message: string | undefined): number | undefined {
  const m = message === undefined ? null : /Unexpected server response: (\d{3})/.exec(message)
  return m === null ? undefined : Number(m[1])
}

/**
 * Browsers hide why an upgrade failed. The REST peer list checks the same token and grant
 * (PROTOCOL.md §5), so asking it tells a refusal that retrying cannot fix from a network
 * failure. Undefined when it cannot tell.
 */
export async function diagnose (peersUrl: string, token: string, fetchFn: typeof fetch | undefined): Promise<RegistryError | undefined> {
  if (fetchFn === undefined) return undefined
  try {
    const res = await fetchFn(peersUrl, { headers: { authorization: `Bearer ${token}` } })
    if (res.status !== 400 && res.status !== 401 && res.status !== 403) return undefined
    const body = await res.json().catch(() => ({})) as { code?: string, message?: string }
    return refusalError(res.status, body.code, body.message)
  } catch {
    return undefined
  }
}
