// One connection attempt: open a socket and wait for `welcome`, or say why it failed and
// whether trying again could help.
import { RegistryError, closeError, refusalError } from './errors.ts'
import type { WelcomeFrame } from './protocol.ts'
import { diagnose, statusFromError, type SocketConstructor, type SocketLike } from './socket.ts'

export interface DialOptions {
  Socket: SocketConstructor
  wsUrl: string
  peersUrl: string
  token: string
  /** Send the token as `Authorization: Bearer` (Node's `ws`), not `?access_token=` (browsers). */
  header: boolean
  timeoutMs: number
  fetch: typeof fetch | undefined
}

export interface Dialled {
  socket: SocketLike
  welcome: WelcomeFrame
  /**
   * Hands the socket over. `ws` may emit several messages in one tick, before an awaiting
   * caller resumes, so whatever came after `welcome` is held and replayed here, in order.
   */
  attach: (onMessage: (data: unknown) => void, onClose: (code: number, reason: string) => void) => void
}

export function parseFrame (data: unknown): { type: string } | undefined {
  if (typeof data !== 'string') return undefined
  try {
    const value: unknown = JSON.parse(data)
    return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' ? value as { type: string } : undefined
  } catch {
    return undefined
  }
}

/** `ws` throws an 'error' that nobody listens to: a socket we hold always has a listener. */
const ignore = (): void => {}

/** Stops listening to a socket we are done with, and closes it without waiting. */
export function discard (socket: SocketLike): void {
  socket.onopen = socket.onmessage = socket.onclose = null
  socket.onerror = ignore
  try {
    if (socket.terminate !== undefined) socket.terminate()
    else socket.close()
  } catch {}
}

export function dial (o: DialOptions): Promise<Dialled> {
  const url = o.header ? o.wsUrl : `${o.wsUrl}&access_token=${encodeURIComponent(o.token)}`
  const socket = o.header ? new o.Socket(url, [], { headers: { authorization: `Bearer ${o.token}` } }) : new o.Socket(url)
  return new Promise((resolve, reject) => {
    let opened = false
    let errorMessage: string | undefined
    let settled = false
    const fail = (err: RegistryError): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      discard(socket)
      reject(err)
    }
    const timer = setTimeout(() => fail(new RegistryError('timeout', `no welcome within ${o.timeoutMs} ms`, { retry: 'backoff' })), o.timeoutMs)
    socket.onopen = () => { opened = true }
    socket.onerror = (event) => { errorMessage = event.message }
    socket.onmessage = (event) => {
      const frame = parseFrame(event.data)
      if (frame?.type !== 'welcome') {
        fail(new RegistryError('protocol_error', 'the server did not start with welcome'))
        return
      }
      settled = true
      clearTimeout(timer)
      const held: unknown[] = []
      let closed: { code: number, reason: string } | undefined
      // From here the close event says what happened; errors only precede it.
      socket.onerror = ignore
      socket.onmessage = (e) => { held.push(e.data) }
      socket.onclose = (e) => { closed = { code: e.code, reason: e.reason } }
      const attach: Dialled['attach'] = (onMessage, onClose) => {
        socket.onmessage = (e) => onMessage(e.data)
        socket.onclose = (e) => onClose(e.code, e.reason)
        for (const data of held) onMessage(data)
        if (closed !== undefined) onClose(closed.code, closed.reason)
      }
      resolve({ socket, welcome: frame as WelcomeFrame, attach })
    }
    socket.onclose = (event) => {
      if (opened) return fail(closeError(event.code, event.reason))
      const status = statusFromError(errorMessage)
      if (status !== undefined) return fail(refusalError(status))
      // Node names a network failure (ECONNREFUSED…); a browser says nothing, so ask REST.
      if (errorMessage !== undefined && errorMessage !== '') {
        return fail(new RegistryError('connection_failed', errorMessage, { retry: 'backoff' }))
      }
      diagnose(o.peersUrl, o.token, o.fetch).then(
        refusal => fail(refusal ?? new RegistryError('connection_failed', 'could not connect', { retry: 'backoff' })),
        () => fail(new RegistryError('connection_failed', 'could not connect', { retry: 'backoff' }))
      )
    }
  })
}
