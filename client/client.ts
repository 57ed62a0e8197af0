import { Emitter } from './emitter.ts'
import { RegistryError, closeError } from './errors.ts'
import { PeerList, type Change } from './presence.ts'
import type { ClientFrame, Peer, PeersFrame, PresenceFrame, ServerFrame, WireLimits } from './protocol.ts'
import type { ClientEvents, ClientState, ConnectOptions } from './options.ts'
import { Heartbeat, RefreshTimer } from './keepalive.ts'
import { Requests } from './requests.ts'
import { dial, discard, parseFrame, type Dialled } from './dial.ts'
import { OPEN, endpoints, resolveSocket, tokenExpiry, type SocketLike } from './socket.ts'

const encoder = new TextEncoder()

/** A registry connection that stays connected (PROTOCOL.md, client side). Use `connect()`. */
export class RegistryClient extends Emitter<ClientEvents> {
  peerId = ''
  projectId = ''
  /** The server's ping interval, from `welcome`. */
  heartbeatMs = 0
  limits: WireLimits | undefined
  /** Sockets opened so far; shows a reconnect storm (or its absence). */
  connectionAttempts = 0
  readonly #opts: ConnectOptions
  readonly #urls: { ws: string, peers: string }
  readonly #list = new PeerList()
  readonly #requests = new Requests()
  #state: ClientState = 'open'
  #socket: SocketLike | undefined
  #heartbeat: Heartbeat | undefined
  readonly #refresher: RefreshTimer
  #meta: Record<string, unknown> | undefined
  #wake: (() => void) | undefined
  #closing: Promise<void> | undefined
  #onClosed: (() => void) | undefined
  #finished = false
  /** This client's earlier peer ids: the server may list one until it notices it is gone. */
  readonly #ghosts = new Set<string>()

  /** Resolves after `welcome`; rejects with a RegistryError when the first attempt fails. */
  static async connect (opts: ConnectOptions): Promise<RegistryClient> {
    const client = new RegistryClient(opts)
    const dialled = await client.#dial()
    client.#adopt(dialled)
    return client
  }

  private constructor (opts: ConnectOptions) {
    super()
    if (opts.token === undefined && opts.getToken === undefined) throw new TypeError('connect: pass token or getToken')
    this.#opts = opts
    this.#urls = endpoints(opts.url, opts.project)
    this.#refresher = new RefreshTimer(opts.refreshBeforeMs ?? 30000, () => { this.#refresh().catch(() => {}) })
  }

  get state (): ClientState { return this.#state }
  /** The other peers of the project, by peerId. */
  get peers (): ReadonlyMap<string, Peer> { return this.#list.peers }
  /** The `rev` the peer list reflects. */
  get rev (): number { return this.#list.rev }

  /** Relays `data` to one peer; resolves on `ack`, rejects with `peer_not_found`, `rate_limited`… */
  async signal (to: string, data: unknown): Promise<void> {
    await this.#request({ type: 'signal', to, data })
  }

  /** Relays `data` to every other peer of the project. */
  async broadcast (data: unknown): Promise<void> {
    await this.#request({ type: 'broadcast', data })
  }

  /** Replaces this peer's meta; it is set again after a reconnect. */
  async setMeta (meta: Record<string, unknown>): Promise<void> {
    await this.#request({ type: 'meta', meta })
    this.#meta = meta
  }

  /** One round trip to the server, in ms. */
  async ping (): Promise<number> {
    const started = Date.now()
    await this.#request({ type: 'ping' })
    return Date.now() - started
  }

  /** Re-reads the peer list from the server. */
  async refreshPeers (): Promise<void> {
    const reply = await this.#request({ type: 'peers' }) as PeersFrame
    this.#replaced(reply.peers, reply.rev)
  }

  /** Closes for good (1000); resolves once the socket is closed. */
  close (): Promise<void> {
    if (this.#finished) return Promise.resolve()
    if (this.#closing !== undefined) return this.#closing
    this.#closing = new Promise(resolve => { this.#onClosed = resolve })
    const socket = this.#socket
    this.#state = 'closed'
    this.#stopTimers()
    this.#wake?.()
    if (socket === undefined || socket.readyState > OPEN) {
      this.#finish(undefined, 1000, 'client closed')
      return this.#closing
    }
    socket.close(1000, 'client closed')
    // A dead network never completes the close handshake: stop waiting for it.
    const timer = setTimeout(() => {
      discard(socket)
      this.#finish(undefined, 1000, 'client closed')
    }, 1000)
    this.#closing.then(() => clearTimeout(timer), () => {})
    return this.#closing
  }

  /** Read through a method: the state changes across awaits, which narrowing cannot see. */
  #isClosed (): boolean { return this.#state === 'closed' }

  async #token (): Promise<string> {
    if (this.#opts.getToken === undefined) return this.#opts.token as string
    let token: string
    try {
      token = await this.#opts.getToken()
    } catch (err) {
      // Often the same outage that dropped the socket: worth asking again after a backoff.
      throw new RegistryError('token_unavailable', `getToken failed: ${err instanceof Error ? err.message : String(err)}`, { retry: 'backoff' })
    }
    const exp = tokenExpiry(token)
    // Connecting with a token that is already dead would only earn another 4001.
    if (exp !== undefined && exp <= Date.now()) throw new RegistryError('token_expired', 'getToken returned an expired token')
    return token
  }

  async #dial (): Promise<Dialled & { token: string }> {
    const token = await this.#token()
    const { Socket, node } = await resolveSocket(this.#opts.WebSocket)
    this.connectionAttempts++
    const dialled = await dial({
      Socket,
      wsUrl: this.#urls.ws,
      peersUrl: this.#urls.peers,
      token,
      header: this.#opts.authHeader ?? node,
      timeoutMs: this.#opts.connectTimeoutMs ?? 10000,
      fetch: this.#opts.fetch ?? globalThis.fetch
    })
    return { ...dialled, token }
  }

  /** A fresh connection: its welcome becomes the list, and the session timers start. */
  #adopt ({ socket, welcome, token, attach }: Dialled & { token: string }): void {
    this.#socket = socket
    this.#state = 'open'
    this.peerId = welcome.peerId
    this.projectId = welcome.projectId
    this.heartbeatMs = welcome.heartbeatMs
    this.limits = welcome.limits
    this.#replaced(welcome.peers, welcome.rev)
    const heartbeat = this.#heartbeat = new Heartbeat(welcome.heartbeatMs, typeof socket.on === 'function', () => {
      this.#request({ type: 'ping' }).catch(() => {})
    }, idle => {
      this.#lost(socket, new RegistryError('heartbeat_timeout', `no traffic for ${idle} ms`, { retry: 'backoff' }), true)
    })
    socket.on?.('ping', () => heartbeat.traffic())
    if (this.#opts.getToken !== undefined) this.#refresher.schedule(tokenExpiry(token))
    attach(data => this.#onMessage(data), (code, reason) => this.#lost(socket, closeError(code, reason)))
  }

  #onMessage (data: unknown): void {
    this.#heartbeat?.traffic()
    const frame = parseFrame(data) as ServerFrame | undefined
    if (frame === undefined) return
    switch (frame.type) {
      case 'signal':
      case 'broadcast':
        this.emit(frame.type, { from: frame.from, data: frame.data })
        return
      case 'peer-joined':
      case 'peer-left':
      case 'peer-updated':
        this.#presence(frame)
        return
      case 'ack':
      case 'pong':
      case 'peers':
        if (frame.id !== undefined) this.#requests.resolve(frame.id, frame)
        return
      case 'error':
        if (frame.id === undefined || !this.#requests.reject(frame.id, frame.code, frame.message)) {
          this.emit('error', new RegistryError(frame.code, frame.message))
        }
    }
  }

  #presence (frame: PresenceFrame): void {
    const got = this.#list.receive(frame)
    this.#report(got.changes)
    if (got.gap) this.#resync()
  }

  #replaced (peers: Peer[], rev: number): void {
    const got = this.#list.replace(peers.filter(p => !this.#ghosts.has(p.peerId)), rev, this.peerId)
    this.#report(got.changes)
    if (got.gap) this.#resync()
  }

  /** A gap in `rev`: ask for the whole list rather than drift (PROTOCOL.md §3). */
  #resync (): void {
    this.#request({ type: 'peers' }).then(reply => {
      const { peers, rev } = reply as PeersFrame
      this.#replaced(peers, rev)
    }, (err: RegistryError) => {
      this.#list.abandonResync()
      if (this.#state === 'open') this.emit('error', err)
    })
  }

  #report (changes: Change[]): void {
    for (const c of changes) {
      if (c.kind === 'joined') this.emit('peer-joined', c.peer)
      else if (c.kind === 'updated') this.emit('peer-updated', c.peer)
      else this.emit('peer-left', { peerId: c.peerId, reason: c.reason, peer: c.peer })
    }
  }

  #request (frame: ClientFrame): Promise<ServerFrame> {
    const socket = this.#socket
    if (this.#state !== 'open' || socket === undefined) {
      return Promise.reject(new RegistryError(this.#state === 'closed' ? 'closed' : 'disconnected', 'not connected'))
    }
    return this.#requests.start(this.#opts.requestTimeoutMs ?? 10000, id => {
      const text = JSON.stringify({ ...frame, id })
      const max = this.limits?.maxFrameBytes ?? Infinity
      // Sending it would get the connection closed 1009 (PROTOCOL.md §4): refuse it here.
      if (text.length > max / 3 && encoder.encode(text).length > max) {
        throw new RegistryError('frame_too_big', `frame exceeds ${max} bytes`)
      }
      socket.send(text)
    })
  }

  async #refresh (): Promise<void> {
    try {
      const token = await this.#token()
      await this.#request({ type: 'auth', token })
      this.#refresher.schedule(tokenExpiry(token))
    } catch (err) {
      if (this.#state !== 'open') return
      this.emit('error', err as RegistryError)
      // Try again later; if it never works the server closes 4001 and a reconnect asks anew.
      this.#refresher.retry()
    }
  }

  #stopTimers (): void {
    this.#heartbeat?.stop()
    this.#heartbeat = undefined
    this.#refresher.stop()
  }

  /** The socket is gone (or declared dead): close for good, or reconnect. */
  #lost (socket: SocketLike, error: RegistryError, dead = false): void {
    if (socket !== this.#socket) return
    this.#socket = undefined
    this.#stopTimers()
    if (dead) discard(socket)
    this.#requests.rejectAll(new RegistryError('disconnected', `connection lost before a reply: ${error.message}`))
    if (this.#state === 'closed') return this.#finish(undefined, error.closeCode ?? 1000, 'client closed')
    const canRetry = this.#opts.reconnect !== false &&
      (error.retry === 'backoff' || (error.retry === 'refresh' && this.#opts.getToken !== undefined))
    if (!canRetry) return this.#finish(error, error.closeCode ?? 1006, error.message)
    this.#reconnect(error).catch(err => this.#finish(err as RegistryError, 1006, String(err)))
  }

  async #reconnect (cause: RegistryError): Promise<void> {
    this.#state = 'reconnecting'
    const previousPeerId = this.peerId
    const { minDelayMs = 500, maxDelayMs = 30000, maxAttempts = Infinity } = this.#opts.reconnect === false ? {} : this.#opts.reconnect ?? {}
    let error = cause
    for (let attempt = 1; ; attempt++) {
      if (this.#isClosed()) return
      if (attempt > maxAttempts) return this.#finish(error, error.closeCode ?? 1006, error.message)
      // After 4001 the fault was the token, not the network: fetch a new one at once.
      const delayMs = error.retry === 'refresh' && attempt === 1 ? 0 : backoff(attempt, minDelayMs, maxDelayMs)
      this.emit('reconnecting', { attempt, delayMs, error })
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, delayMs)
        this.#wake = () => { clearTimeout(timer); resolve() }
      })
      this.#wake = undefined
      if (this.#isClosed()) return
      let dialled: Dialled & { token: string }
      try {
        dialled = await this.#dial()
      } catch (err) {
        const e = err instanceof RegistryError ? err : new RegistryError('connection_failed', String(err), { retry: 'backoff' })
        if (e.retry !== 'backoff') return this.#finish(e, e.closeCode ?? 1006, e.message)
        error = e
        continue
      }
      if (this.#isClosed()) {
        discard(dialled.socket)
        return this.#finish(undefined, 1000, 'client closed')
      }
      this.#ghosts.add(previousPeerId)
      this.#adopt(dialled)
      if (this.#meta !== undefined) this.setMeta(this.#meta).catch(err => this.emit('error', err as RegistryError))
      this.emit('reconnected', { peerId: this.peerId, previousPeerId })
      return
    }
  }

  /** Final: no socket, no timer, one `close` event. */
  #finish (error: RegistryError | undefined, code: number, reason: string): void {
    this.#state = 'closed'
    this.#socket = undefined
    this.#stopTimers()
    this.#requests.rejectAll(error ?? new RegistryError('closed', 'the client was closed'))
    if (this.#finished) return
    this.#finished = true
    this.#onClosed?.()
    this.emit('close', error === undefined ? { code, reason } : { code, reason, error })
  }
}

/** Exponential backoff with equal jitter: never zero, never in lockstep with other clients. */
export function backoff (attempt: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2)
}
