// The SDK under test, opened with teardown registered where it is created (STYLE.md §9).
import WebSocket from 'ws'
import { connect, type ClientEvents, type ConnectOptions, type RegistryClient, type SocketLike } from '../../client/index.ts'
import { token } from './app.ts'

interface Teardown { teardown: (fn: () => unknown) => void }

export async function open (t: Teardown, url: string, project: string, opts: Partial<ConnectOptions> & { sub?: string } = {}): Promise<RegistryClient> {
  const { sub = 'alice', ...rest } = opts
  const client = await connect({ url, project, ...(rest.getToken === undefined ? { token: token({ sub }) } : {}), ...rest })
  t.teardown(() => client.close())
  return client
}

/** The next `event` of `client`; arm it before acting, await it after. */
export function next<E extends keyof ClientEvents> (client: RegistryClient, event: E, timeoutMs = 5000): Promise<ClientEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${String(event)} event within ${timeoutMs} ms`)) }, timeoutMs)
    const off = client.on(event, payload => {
      clearTimeout(timer)
      off()
      resolve(payload)
    })
  })
}

/**
 * `ws` seen only through the WHATWG surface, as a browser's WebSocket: it hides pings. Tests
 * subclass it to watch what is sent or to make the network drop traffic (`receives`).
 */
export class BrowserSocket implements SocketLike {
  protected readonly ws: WebSocket
  #onmessage: SocketLike['onmessage'] = null

  constructor (url: string) {
    this.ws = new WebSocket(url)
    this.ws.onmessage = (e) => { if (this.receives()) this.#onmessage?.(e) }
  }

  /** False drops every incoming message, as a network that silently stopped would. */
  protected receives (): boolean { return true }

  get readyState (): number { return this.ws.readyState }
  set onopen (fn: SocketLike['onopen']) { this.ws.onopen = fn }
  set onmessage (fn: SocketLike['onmessage']) { this.#onmessage = fn }
  set onclose (fn: SocketLike['onclose']) { this.ws.onclose = fn }
  set onerror (fn: SocketLike['onerror']) { this.ws.onerror = fn }
  get onopen (): SocketLike['onopen'] { return null }
  get onmessage (): SocketLike['onmessage'] { return null }
  get onclose (): SocketLike['onclose'] { return null }
  get onerror (): SocketLike['onerror'] { return null }
  close (code?: number, reason?: string): void { this.ws.close(code, reason) }
  send (data: string): void { this.ws.send(data) }
}
