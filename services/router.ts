import { Close, type FrameErrorCode } from './codes.ts'
import { parseFrame, type ClientFrame } from './frames.ts'
import { isGranted, type Authorize, type VerifyOutcome } from './auth.ts'
import type { Hub } from './hub.ts'
import type { Session } from './session.ts'
import { peerListJson } from './peer-json.ts'

export interface FrameContext {
  hub: Hub
  /** Checks a token presented in an `auth` frame (signature, claims, expiry). */
  verify: (token: string) => VerifyOutcome
  authorize: Authorize | undefined
  now: () => number
}

const maxInvalidRun = 10

/**
 * One client text frame through PROTOCOL.md §4's guards and §3's dispatch. Returns a promise
 * only for the frames whose handling must wait (peers, meta, auth), so the hot path of
 * signal and broadcast never awaits.
 */
export function handleFrame (ctx: FrameContext, s: Session, text: string): Promise<void> | undefined {
  if (s.closed) return
  const hub = ctx.hub
  const verdict = s.take(ctx.now())
  const parsed = parseFrame(text)
  if (verdict !== 'ok') {
    if (verdict === 'close') {
      s.kick(Close.policyViolation, 'rate limit exceeded for too long')
      return
    }
    // Dropped frames count as neither valid nor invalid (§4).
    sendError(hub, s, 'rate_limited', 'rate limit exceeded; frame dropped', parsed.ok ? parsed.frame.id : parsed.id)
    return
  }
  if (!parsed.ok) {
    hub.observer.frameIn?.('invalid')
    sendError(hub, s, parsed.code, parsed.message, parsed.id)
    if (++s.invalidRun >= maxInvalidRun) s.kick(Close.policyViolation, 'too many invalid frames')
    return
  }
  s.invalidRun = 0
  const frame = parsed.frame
  hub.observer.frameIn?.(frame.type)
  // A failure inside the registry still gets its answer (§3 `internal`); the hub logs it.
  return dispatch(ctx, s, frame)?.catch((err: unknown) => {
    sendError(hub, s, 'internal', 'internal error', frame.id)
    throw err
  })
}

function dispatch (ctx: FrameContext, s: Session, frame: ClientFrame): Promise<void> | undefined {
  const hub = ctx.hub
  switch (frame.type) {
    case 'signal':
      return reply(hub, s, hub.signal(s, frame.to, frame.data), frame.id)
    case 'broadcast':
      return reply(hub, s, hub.broadcast(s, frame.data), frame.id)
    case 'ping':
      s.deliver(frame.id === undefined ? '{"type":"pong"}' : `{"type":"pong","id":${JSON.stringify(frame.id)}}`)
      hub.observer.frameOut?.('pong', 1)
      return
    case 'peers':
      return listPeers(hub, s, frame.id)
    case 'meta':
      return updateMeta(hub, s, frame.meta, frame.id)
    case 'auth':
      return refreshAuth(ctx, s, frame.token, frame.id)
  }
}

function reply (hub: Hub, s: Session, outcome: ReturnType<Hub['signal']>, id: string | undefined): undefined {
  if (!outcome.ok) sendError(hub, s, outcome.code, outcome.message, id)
  else if (id !== undefined) ack(hub, s, id)
  return undefined
}

async function listPeers (hub: Hub, s: Session, id: string | undefined): Promise<void> {
  const listed = await hub.presence.list(s.projectId)
  if (!listed.ok) return sendError(hub, s, listed.code, listed.message, id)
  const idPart = id === undefined ? '' : `,"id":${JSON.stringify(id)}`
  s.deliver(`{"type":"peers"${idPart},"peers":${peerListJson(listed.peers)},"rev":${listed.rev}}`)
  hub.observer.frameOut?.('peers', 1)
}

async function updateMeta (hub: Hub, s: Session, meta: Record<string, unknown>, id: string | undefined): Promise<void> {
  const bytes = Buffer.byteLength(JSON.stringify(meta))
  if (bytes > hub.limits.maxMetaBytes) {
    // The frame itself is schema-valid, so it does not count towards the 10 invalid in a row (§4).
    return sendError(hub, s, 'invalid_frame', `meta is ${bytes} bytes; the limit is ${hub.limits.maxMetaBytes}`, id)
  }
  const peer = { ...s.peer, meta }
  const updated = await hub.presence.update(s.projectId, peer)
  if (!updated.ok) return sendError(hub, s, updated.code === 'unavailable' ? 'unavailable' : 'internal', updated.message, id)
  s.peer = peer
  if (id !== undefined) ack(hub, s, id)
}

async function refreshAuth (ctx: FrameContext, s: Session, token: string, id: string | undefined): Promise<void> {
  const hub = ctx.hub
  const verified = ctx.verify(token)
  if (!verified.ok) return sendError(hub, s, 'unauthorized', verified.message, id)
  if (verified.user.sub !== s.userId) return sendError(hub, s, 'unauthorized', 'the token is for another user', id)
  if (!await isGranted(verified.user, s.projectId, ctx.authorize)) {
    s.kick(Close.projectRevoked, 'project no longer granted')
    return
  }
  s.expiresAt = verified.user.exp * 1000 + hub.limits.clockToleranceMs
  s.armExpiry(ctx.now())
  if (id !== undefined) ack(hub, s, id)
}

function ack (hub: Hub, s: Session, id: string): void {
  s.deliver(`{"type":"ack","id":${JSON.stringify(id)}}`)
  hub.observer.frameOut?.('ack', 1)
}

function sendError (hub: Hub, s: Session, code: FrameErrorCode, message: string, id: string | undefined): void {
  hub.observer.error?.(code)
  const frame: Record<string, unknown> = { type: 'error' }
  if (id !== undefined) frame.id = id
  frame.code = code
  frame.message = message
  s.deliver(JSON.stringify(frame))
  hub.observer.frameOut?.('error', 1)
}
