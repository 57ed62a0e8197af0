import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { WebSocket } from 'ws'
import { isGranted } from '../services/auth.ts'
import { Close } from '../services/codes.ts'
import type { Session } from '../services/session.ts'
import { tokenFrom } from '../plugins/auth.ts'
import { WsPeerSocket } from './peer-socket.ts'
import { refuse, requestSerializer } from './refuse.ts'

const projectPattern = /^[A-Za-z0-9._-]{1,128}$/
const wsKeyPattern = /^[+/0-9A-Za-z]{22}==$/
const kSession = Symbol('registry.session')
type Tagged = WebSocket & { [kSession]: Session }
/** An admitted request's socket until its upgrade completes. */
type Pending = Socket & { [kSession]: Session }
function sessionOf (ws: WebSocket): Session { return (ws as Tagged)[kSession] }
export interface WsRouteOptions {
  /** True when the host registered @fastify/websocket: its preClose runs before ours. */
  hostWebsocket: boolean
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
    const h = request.headers
    if (h.upgrade?.toLowerCase() !== 'websocket') {
      refuse(reply, 'bad_request', 'Upgrade header must be "websocket"')
      return
    }
    if (h['sec-websocket-version'] !== '13') {
      reply.header('sec-websocket-version', '13')
      refuse(reply, 'upgrade_required', 'Sec-WebSocket-Version must be 13')
      return
    }
    const key = h['sec-websocket-key']
    if (typeof key !== 'string' || !wsKeyPattern.test(key.trim())) {
      refuse(reply, 'bad_request', 'missing or invalid Sec-WebSocket-Key')
      return
    }
    done()
  }

  /** PROTOCOL.md §2, in the table's order; the join itself is refusals #5–#7. */
  async function admit (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const origin = request.headers.origin
    if (config.allowedOrigins !== undefined && origin !== undefined && !config.allowedOrigins.has(origin)) {
      return refuse(reply, 'origin_not_allowed', 'origin not allowed')
    }
    const token = tokenFrom(request, true)
    if (token === undefined || token === '') return refuse(reply, 'unauthorized', 'missing bearer token')
    const verified = fastify.registryVerify(token)
    if (!verified.ok) return refuse(reply, 'unauthorized', verified.message)
    const project = (request.query as Record<string, unknown>).project
    if (typeof project !== 'string' || !projectPattern.test(project)) {
      return refuse(reply, 'invalid_project', 'project must match ^[A-Za-z0-9._-]{1,128}$')
    }
    let granted = isGranted(verified.user, project, config.authorize)
    if (typeof granted !== 'boolean') granted = await granted
    if (!granted) return refuse(reply, 'forbidden', `project ${project} is not granted`)
    const admission = await hub.admit(verified.user, project)
    if (!admission.ok) return refuse(reply, admission.refusal.code, admission.refusal.message)
    const session = admission.session
    // The client may vanish before the 101: the peer must not stay listed.
    const raw = request.raw.socket as Pending
    raw[kSession] = session
    raw.on('close', onEarlyClose)
    admitted.set(request, reply.raw)
    // The 101 that ws writes next and our welcome then leave in one write (uncorked in onSocket).
    raw.cork()
  }

  function onSocket (ws: WebSocket, request: FastifyRequest): void {
    try {
      accept(ws, request)
    } finally {
      request.raw.socket.uncork()
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

  function accept (ws: WebSocket, request: FastifyRequest): void {
    const response = admitted.get(request)
    if (response === undefined) {
      ws.close(Close.internalError)
      return
    }
    admitted.delete(request)
    const raw = request.raw.socket as Pending
    const session = raw[kSession]
    raw.removeListener('close', onEarlyClose)
    // The upgrade leaves the whole HTTP exchange reachable from the socket for as long as the
    // peer stays: the response Node assigned to it (and through it the request, Fastify's
    // request and reply, a child logger) and @fastify/websocket's error listener. That is most
    // of a peer's heap, and every major GC walks it; the socket needs none of it.
    if (response.socket === raw) response.detachSocket(raw)
    ws.removeAllListeners('error')
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
    request.log.info({ projectId: session.projectId, peerId: session.peerId, userId: session.userId }, 'peer connected')
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

/**
 * A host's @fastify/websocket closes every client with a bare `close()` (1005) in its
 * preClose, which runs before ours. We always close with a code, so a bare close can only be
 * that shutdown: make it 1001 as PROTOCOL.md §4 promises.
 */
function closeWithGoingAway (this: WebSocket, code?: number, reason?: string | Buffer): void {
  WebSocket.prototype.close.call(this, code ?? Close.goingAway, reason ?? (code === undefined ? 'server shutting down' : undefined))
}
