import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { WebSocket } from 'ws'
import { isGranted, type RegistryUser } from '../services/auth.ts'
import { Close, type Refusal } from '../services/codes.ts'
import type { Admission } from '../services/hub.ts'
import type { Session } from '../services/session.ts'
import { tokenFrom, tokenOf } from '../plugins/auth.ts'
import { WsPeerSocket } from './peer-socket.ts'
import { refuse, requestSerializer } from './refuse.ts'

const projectPattern = /^[A-Za-z0-9._-]{1,128}$/
const wsKeyPattern = /^[+/0-9A-Za-z]{22}==$/
const kSession = Symbol('registry.session')
type Tagged = WebSocket & { [kSession]: Session }
/** An admitted request's socket until its upgrade completes. */
type Pending = Socket & { [kSession]: Session }
function sessionOf (ws: WebSocket): Session { return (ws as Tagged)[kSession] }
type Outcome = { ok: true, session: Session } | ({ ok: false } & Refusal)
/** A refusal the direct path reached first, for the routed path to answer as it answers every other. */
const kRefusal = Symbol('registry.refusal')
type Refused = IncomingMessage & { [kRefusal]?: Outcome & { ok: false } }

export interface WsRouteOptions {
  /** True when the host registered @fastify/websocket: its preClose runs before ours. */
  hostWebsocket: boolean
  /**
   * Set with `directUpgrades`: the server @fastify/websocket listens on instead of Fastify's.
   * We take Fastify's upgrades, admit those to our route ourselves and hand it every other.
   */
  routed?: Server
}

export default async function wsRoutes (fastify: FastifyInstance, opts: WsRouteOptions): Promise<void> {
  const hub = fastify.registryHub
  const config = fastify.registryConfig
  // Without a host's server, ws enforces maxFrameBytes itself (maxPayload) before buffering.
  const maxMessageBytes = opts.hostWebsocket ? config.limits.maxFrameBytes : Infinity
  /** Admitted requests and the response Node bound to their socket; the session is on the socket. */
  const admitted = new WeakMap<FastifyRequest, ServerResponse>()

  function onEarlyClose (this: Pending): void {
    hub.release(this[kSession], 'closed').catch(() => {})
  }

  /** Not a valid RFC 6455 upgrade: a 4xx before any check of §2's table. */
  function checkUpgrade (request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    if (!request.ws) {
      refuse(reply, 'upgrade_required', 'this endpoint only accepts WebSocket upgrades')
      return
    }
    const problem = upgradeProblem(request.headers)
    if (problem !== undefined) {
      if (problem.code === 'upgrade_required') reply.header('sec-websocket-version', '13')
      refuse(reply, problem.code, problem.message)
      return
    }
    done()
  }

  /**
   * PROTOCOL.md §2, in the table's order; the join itself is refusals #5–#7. Synchronous
   * unless `authorize` or the join has to wait (a remote store, a project new to this node).
   */
  function admission (origin: string | undefined, token: string | undefined, project: unknown): Outcome | Promise<Outcome> {
    if (config.allowedOrigins !== undefined && origin !== undefined && !config.allowedOrigins.has(origin)) {
      return { ok: false, code: 'origin_not_allowed', message: 'origin not allowed' }
    }
    if (token === undefined || token === '') return { ok: false, code: 'unauthorized', message: 'missing bearer token' }
    const verified = fastify.registryVerify(token)
    if (!verified.ok) return { ok: false, code: 'unauthorized', message: verified.message }
    if (typeof project !== 'string' || !projectPattern.test(project)) {
      return { ok: false, code: 'invalid_project', message: 'project must match ^[A-Za-z0-9._-]{1,128}$' }
    }
    const granted = isGranted(verified.user, project, config.authorize)
    if (typeof granted !== 'boolean') return granted.then(ok => ok ? join(verified.user, project) : forbidden(project))
    return granted ? join(verified.user, project) : forbidden(project)
  }
  function join (user: RegistryUser, project: string): Outcome | Promise<Outcome> {
    const admitted = hub.admit(user, project)
    return admitted instanceof Promise ? admitted.then(outcomeOf) : outcomeOf(admitted)
  }

  /**
   * An admitted socket carries its session until the upgrade completes. False when the client
   * already went while it was admitted: its 'close' has passed, so the session goes now.
   */
  function hold (raw: Pending, session: Session): boolean {
    if (raw.destroyed) {
      hub.release(session, 'closed').catch(() => {})
      return false
    }
    raw[kSession] = session
    // The client may vanish before the 101: the peer must not stay listed.
    raw.on('close', onEarlyClose)
    // The 101 that ws writes next and our welcome then leave in one write (uncorked once accepted).
    raw.cork()
    return true
  }

  async function admit (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const outcome = (request.raw as Refused)[kRefusal] ??
      await admission(request.headers.origin, tokenFrom(request, true), (request.query as Record<string, unknown>).project)
    if (!outcome.ok) return refuse(reply, outcome.code, outcome.message)
    if (hold(request.raw.socket as Pending, outcome.session)) admitted.set(request, reply.raw)
  }

  function onSocket (ws: WebSocket, request: FastifyRequest): void {
    const raw = request.raw.socket as Pending
    try {
      const response = admitted.get(request)
      if (response === undefined) {
        ws.close(Close.internalError)
        return
      }
      admitted.delete(request)
      // The upgrade leaves the whole HTTP exchange reachable from the socket for as long as the
      // peer stays: the response Node assigned to it (and through it the request, Fastify's
      // request and reply, a child logger) and @fastify/websocket's error listener. That is most
      // of a peer's heap, and every major GC walks it; the socket needs none of it.
      if (response.socket === raw) response.detachSocket(raw)
      ws.removeAllListeners('error')
      accept(ws, raw, request.log)
    } finally {
      raw.uncork()
    }
  }

  // One set of listeners for every peer, its session on the socket itself: closures per
  // peer (and the request's child logger they kept) were a fifth of an idle peer's heap.
  function onMessage (this: WebSocket, data: Buffer, isBinary: boolean): void {
    const session = sessionOf(this)
    // A host's WebSocket server has its own maxPayload; ours still holds (PROTOCOL.md §4).
    if (data.length > maxMessageBytes) session.kick(Close.tooBig, 'message too big')
    else hub.receive(session, data, isBinary)
  }
  function onPong (this: WebSocket): void { sessionOf(this).alive = true }
  // ws closes itself on a protocol error (1002/1007/1008/1009): the server ended it.
  function onError (this: WebSocket, err: Error): void {
    const session = sessionOf(this)
    session.leaveReason = 'kicked'
    fastify.log.debug({ err, peerId: session.peerId }, 'websocket closed on a protocol error')
  }
  function onClose (this: WebSocket, code: number): void {
    const session = sessionOf(this)
    hub.observer.close?.(code)
    hub.release(session).catch(() => {})
    fastify.log.info({
      projectId: session.projectId,
      peerId: session.peerId,
      userId: session.userId,
      closeCode: code,
      reason: session.leaveReason,
      durationMs: Date.now() - session.openedAt
    }, 'peer disconnected')
  }

  function accept (ws: WebSocket, raw: Pending, log: FastifyBaseLogger): void {
    const session = raw[kSession]
    raw.removeListener('close', onEarlyClose)
    if (session.closed) {
      // Released while the upgrade completed (shutdown began): tell the client why.
      ws.close(Close.goingAway, 'server shutting down')
      return
    }
    if (opts.hostWebsocket) ws.close = closeWithGoingAway
    // Listeners first, before anything can yield, so no frame is missed (STYLE.md §1).
    const tagged = ws as Tagged
    tagged[kSession] = session
    ws.on('message', onMessage)
    ws.on('pong', onPong)
    ws.on('error', onError)
    ws.on('close', onClose)
    hub.attach(session, new WsPeerSocket(ws, raw))
    log.info({ projectId: session.projectId, peerId: session.peerId, userId: session.userId }, 'peer connected')
  }

  /**
   * `directUpgrades`: an upgrade to our route is admitted here, before Fastify's request
   * lifecycle (a request and reply, a ServerResponse, a child logger, four hooks), ~9 % of a
   * connection's server CPU (`npm run bench:ab`). Whatever is not a valid upgrade to our
   * route, and every refusal, goes on to @fastify/websocket and Fastify as before, so refusals
   * keep their statuses, bodies, hooks and logs; a refusal found here is answered there, not
   * found twice.
   */
  function onUpgrade (req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = req.url ?? ''
    if (req.method !== 'GET' || !url.startsWith(wsPath) || (url.length > wsPath.length && url[wsPath.length] !== '?') ||
      upgradeProblem(req.headers) !== undefined) {
      (opts.routed as Server).emit('upgrade', req, socket, head)
      return
    }
    // Node took its own error listener off before the upgrade; an unguarded error would throw.
    socket.on('error', destroySocket)
    let outcome: Outcome | Promise<Outcome> | undefined
    try {
      const query = new URLSearchParams(url.slice(wsPath.length + 1))
      outcome = admission(req.headers.origin, tokenOf(req.headers.authorization, single(query, 'access_token')), single(query, 'project'))
    } catch {}
    if (outcome instanceof Promise) {
      outcome.then(o => { upgradeDirect(req, socket as Pending, head, o) }, () => { upgradeDirect(req, socket as Pending, head, undefined) })
    } else {
      upgradeDirect(req, socket as Pending, head, outcome)
    }
  }
  /** `outcome` undefined: admission failed, and Fastify finds what it finds. */
  function upgradeDirect (req: IncomingMessage, socket: Pending, head: Buffer, outcome: Outcome | undefined): void {
    socket.removeListener('error', destroySocket)
    if (outcome?.ok !== true) {
      // Fastify answers: the refusal found here, or (after a failure here) whatever it finds.
      if (outcome !== undefined) (req as Refused)[kRefusal] = outcome
      if (!socket.destroyed) (opts.routed as Server).emit('upgrade', req, socket, head)
      return
    }
    if (!hold(socket, outcome.session)) return
    try {
      fastify.websocketServer.handleUpgrade(req, socket, head, acceptDirect)
    } catch (err) {
      fastify.log.error({ err }, 'upgrade failed')
      socket.destroy()
    }
  }
  function acceptDirect (ws: WebSocket, req: IncomingMessage): void {
    const raw = req.socket as Pending
    try {
      accept(ws, raw, fastify.log)
    } finally {
      raw.uncork()
    }
  }
  const wsPath = `${fastify.prefix}/v1/ws`
  if (opts.routed !== undefined) {
    fastify.server.on('upgrade', onUpgrade)
    fastify.addHook('onClose', (_instance, done) => {
      fastify.server.removeListener('upgrade', onUpgrade)
      done()
    })
  }

  fastify.route({
    method: 'GET',
    url: '/v1/ws',
    logSerializers: { req: requestSerializer },
    schema: { hide: true },
    onRequest: checkUpgrade,
    preValidation: admit,
    handler: async (_request, reply) => refuse(reply, 'upgrade_required', 'this endpoint only accepts WebSocket upgrades'),
    wsHandler: onSocket
  })
}

/** Why a request is not a valid RFC 6455 upgrade; undefined when it is one. */
function upgradeProblem (h: IncomingHttpHeaders): Refusal | undefined {
  if (h.upgrade?.toLowerCase() !== 'websocket') return { code: 'bad_request', message: 'Upgrade header must be "websocket"' }
  if (h['sec-websocket-version'] !== '13') return { code: 'upgrade_required', message: 'Sec-WebSocket-Version must be 13' }
  const key = h['sec-websocket-key']
  if (typeof key !== 'string' || !wsKeyPattern.test(key.trim())) return { code: 'bad_request', message: 'missing or invalid Sec-WebSocket-Key' }
  return undefined
}

/** A query parameter as Fastify's parser gives it to the routed path: a string only when it appears once. */
function single (query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name)
  return values.length === 1 ? values[0] : undefined
}

function destroySocket (this: Socket): void { this.destroy() }

function forbidden (project: string): Outcome {
  return { ok: false, code: 'forbidden', message: `project ${project} is not granted` }
}

function outcomeOf (admitted: Admission): Outcome {
  return admitted.ok ? admitted : { ok: false, ...admitted.refusal }
}

/**
 * A host's @fastify/websocket closes every client with a bare `close()` (1005) in its
 * preClose, which runs before ours. We always close with a code, so a bare close can only be
 * that shutdown: make it 1001 as PROTOCOL.md §4 promises.
 */
function closeWithGoingAway (this: WebSocket, code?: number, reason?: string | Buffer): void {
  WebSocket.prototype.close.call(this, code ?? Close.goingAway, reason ?? (code === undefined ? 'server shutting down' : undefined))
}
