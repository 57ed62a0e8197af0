// Every code of the wire contract (PROTOCOL.md §2–§4) lives here, so the edges that turn
// outcomes into frames, closes and HTTP replies all speak the same words.

// The code unions are the client SDK's (it must not import server code; the server may
// import its types), so both sides name every code from one list.
import type { FrameErrorCode, RefusalCode } from '../client/protocol.ts'
export type { FrameErrorCode, RefusalCode }

export const refusalStatus: Record<RefusalCode, number> = {
  origin_not_allowed: 403,
  unauthorized: 401,
  invalid_project: 400,
  forbidden: 403,
  unavailable: 503,
  too_many_connections: 429,
  project_full: 403,
  not_found: 404,
  upgrade_required: 426,
  bad_request: 400
}

export const Close = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  tokenExpired: 4001,
  projectRevoked: 4003,
  slowConsumer: 4009
} as const

export type LeaveReason = 'closed' | 'timeout' | 'kicked'

export type Outcome = { ok: true } | { ok: false, code: FrameErrorCode, message: string }

export interface Refusal { code: RefusalCode, message: string }
