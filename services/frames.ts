// The single source of truth for every frame of PROTOCOL.md §3: each schema gives the
// runtime checker (compiled once, at module load) and the TypeScript type.
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FrameErrorCode } from './codes.ts'

export const ProjectId = Type.String({ pattern: '^[A-Za-z0-9._-]{1,128}$' })
export const ReqId = Type.String({ minLength: 1, maxLength: 64 })
export const PeerIdRef = Type.String({ minLength: 1, maxLength: 128 })
export const Meta = Type.Record(Type.String(), Type.Unknown())

export const Peer = Type.Object({
  peerId: Type.String(),
  userId: Type.String(),
  name: Type.Optional(Type.String()),
  meta: Meta,
  connectedAt: Type.String({ description: 'ISO-8601 time the peer connected' })
}, { additionalProperties: false })
export type Peer = Static<typeof Peer>

const strict = { additionalProperties: false } as const

export const SignalIn = Type.Object({ type: Type.Literal('signal'), to: PeerIdRef, data: Type.Unknown(), id: Type.Optional(ReqId) }, strict)
export const BroadcastIn = Type.Object({ type: Type.Literal('broadcast'), data: Type.Unknown(), id: Type.Optional(ReqId) }, strict)
export const PeersIn = Type.Object({ type: Type.Literal('peers'), id: Type.Optional(ReqId) }, strict)
export const MetaIn = Type.Object({ type: Type.Literal('meta'), meta: Meta, id: Type.Optional(ReqId) }, strict)
export const AuthIn = Type.Object({ type: Type.Literal('auth'), token: Type.String({ minLength: 1 }), id: Type.Optional(ReqId) }, strict)
export const PingIn = Type.Object({ type: Type.Literal('ping'), id: Type.Optional(ReqId) }, strict)

export type SignalIn = Static<typeof SignalIn>
export type BroadcastIn = Static<typeof BroadcastIn>
export type PeersIn = Static<typeof PeersIn>
export type MetaIn = Static<typeof MetaIn>
export type AuthIn = Static<typeof AuthIn>
export type PingIn = Static<typeof PingIn>
export type ClientFrame = SignalIn | BroadcastIn | PeersIn | MetaIn | AuthIn | PingIn

export const Limits = Type.Object({
  maxFrameBytes: Type.Integer(),
  maxMetaBytes: Type.Integer(),
  rateLimitPerSec: Type.Number(),
  rateLimitBurst: Type.Integer(),
  maxBufferedBytes: Type.Integer()
}, strict)
export type WireLimits = Static<typeof Limits>

const Rev = Type.Integer({ minimum: 1 })
const LeaveReason = Type.Union([Type.Literal('closed'), Type.Literal('timeout'), Type.Literal('kicked')])
const ErrorCode = Type.Union(['invalid_frame', 'peer_not_found', 'rate_limited', 'unauthorized', 'unavailable', 'internal'].map(c => Type.Literal(c)))

export const WelcomeOut = Type.Object({ type: Type.Literal('welcome'), peerId: Type.String(), projectId: Type.String(), peers: Type.Array(Peer), rev: Rev, heartbeatMs: Type.Integer(), limits: Limits }, strict)
export const PeerJoinedOut = Type.Object({ type: Type.Literal('peer-joined'), peer: Peer, rev: Rev }, strict)
export const PeerLeftOut = Type.Object({ type: Type.Literal('peer-left'), peerId: Type.String(), reason: LeaveReason, rev: Rev }, strict)
export const PeerUpdatedOut = Type.Object({ type: Type.Literal('peer-updated'), peer: Peer, rev: Rev }, strict)
export const SignalOut = Type.Object({ type: Type.Literal('signal'), from: Type.String(), data: Type.Unknown() }, strict)
export const BroadcastOut = Type.Object({ type: Type.Literal('broadcast'), from: Type.String(), data: Type.Unknown() }, strict)
export const PeersOut = Type.Object({ type: Type.Literal('peers'), id: Type.Optional(ReqId), peers: Type.Array(Peer), rev: Type.Integer({ minimum: 0 }) }, strict)
export const AckOut = Type.Object({ type: Type.Literal('ack'), id: ReqId }, strict)
export const PongOut = Type.Object({ type: Type.Literal('pong'), id: Type.Optional(ReqId) }, strict)
export const ErrorOut = Type.Object({ type: Type.Literal('error'), id: Type.Optional(ReqId), code: ErrorCode, message: Type.String() }, strict)

export const ServerFrame = Type.Union([WelcomeOut, PeerJoinedOut, PeerLeftOut, PeerUpdatedOut, SignalOut, BroadcastOut, PeersOut, AckOut, PongOut, ErrorOut])
export type ServerFrame = Static<typeof ServerFrame>
/** For tests and clients: is this text a frame of the contract? */
export const checkServerFrame = TypeCompiler.Compile(ServerFrame)

const checkers: Record<string, ReturnType<typeof TypeCompiler.Compile<TSchema>>> = {
  signal: TypeCompiler.Compile(SignalIn),
  broadcast: TypeCompiler.Compile(BroadcastIn),
  peers: TypeCompiler.Compile(PeersIn),
  meta: TypeCompiler.Compile(MetaIn),
  auth: TypeCompiler.Compile(AuthIn),
  ping: TypeCompiler.Compile(PingIn)
}
const checkReqId = TypeCompiler.Compile(ReqId)

export type Parsed =
  | { ok: true, frame: ClientFrame }
  | { ok: false, code: FrameErrorCode, message: string, id?: string }

/**
 * Text → a valid client frame, or the error to answer with. `id` is echoed whenever the
 * refused text was a JSON object with a valid `id` (PROTOCOL.md §3).
 */
export function parseFrame (text: string): Parsed {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, code: 'invalid_frame', message: 'frame is not valid JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'invalid_frame', message: 'frame must be a JSON object' }
  }
  const obj = value as Record<string, unknown>
  const type = obj.type
  const checker = typeof type === 'string' && Object.hasOwn(checkers, type) ? checkers[type] : undefined
  if (checker !== undefined && checker.Check(obj)) return { ok: true, frame: obj as ClientFrame }
  const id = checkReqId.Check(obj.id) ? obj.id as string : undefined
  const message = checker === undefined
    ? 'unknown frame type'
    : describe(checker.Errors(obj).First())
  return id === undefined ? { ok: false, code: 'invalid_frame', message } : { ok: false, code: 'invalid_frame', message, id }
}

function describe (err: { path: string, message: string } | undefined): string {
  if (err === undefined) return 'invalid frame'
  return err.path === '' ? err.message : `${err.path}: ${err.message}`
}
