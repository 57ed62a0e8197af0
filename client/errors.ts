import { CloseCode, type FrameErrorCode, type RefusalCode } from './protocol.ts'

/** What the client does after a failure: retry with backoff, retry with a fresh token, or stop. */
export type Retry = 'backoff' | 'refresh' | 'never'

/** Codes the client itself adds to the contract's: closes, timeouts and local refusals. */
export type LocalErrorCode =
  | 'timeout'
  | 'disconnected'
  | 'closed'
  | 'connection_failed'
  | 'connection_lost'
  | 'heartbeat_timeout'
  | 'going_away'
  | 'token_expired'
  | 'token_unavailable'
  | 'policy_violation'
  | 'unsupported_data'
  | 'message_too_big'
  | 'protocol_error'
  | 'invalid_payload'
  | 'slow_consumer'
  | 'frame_too_big'

export type ClientErrorCode = FrameErrorCode | RefusalCode | LocalErrorCode

/**
 * Every failure the client reports: `code` is the contract's word when the server gave one
 * (`peer_not_found`, `rate_limited`, a refusal's code) and the client's own otherwise.
 */
export class RegistryError extends Error {
  readonly code: ClientErrorCode
  /** The close code, when the failure was a close. */
  readonly closeCode: number | undefined
  /** The HTTP status, when the upgrade was refused. */
  readonly status: number | undefined
  readonly retry: Retry

  constructor (code: ClientErrorCode, message: string, extra: { closeCode?: number, status?: number, retry?: Retry } = {}) {
    super(message)
    this.name = 'RegistryError'
    this.code = code
    this.closeCode = extra.closeCode
    this.status = extra.status
    this.retry = extra.retry ?? 'never'
  }
}

const closes: Record<number, [LocalErrorCode | RefusalCode | FrameErrorCode, Retry]> = {
  [CloseCode.normal]: ['closed', 'never'],
  [CloseCode.goingAway]: ['going_away', 'backoff'],
  [CloseCode.protocolError]: ['protocol_error', 'never'],
  [CloseCode.unsupportedData]: ['unsupported_data', 'never'],
  [CloseCode.abnormal]: ['connection_lost', 'backoff'],
  [CloseCode.invalidPayload]: ['invalid_payload', 'never'],
  [CloseCode.policyViolation]: ['policy_violation', 'never'],
  [CloseCode.tooBig]: ['message_too_big', 'never'],
  [CloseCode.internalError]: ['internal', 'backoff'],
  // A fresh token may succeed; the same one never will.
  [CloseCode.tokenExpired]: ['token_expired', 'refresh'],
  [CloseCode.projectRevoked]: ['forbidden', 'never'],
  // Kicked for reading too slowly: worth another try once the client has caught up.
  [CloseCode.slowConsumer]: ['slow_consumer', 'backoff']
}

/** PROTOCOL.md §4: which closes are worth a reconnect. Unknown 1xxx codes are transport trouble. */
export function closeError (code: number, reason: string): RegistryError {
  const known = closes[code]
  const [name, retry]: [ClientErrorCode, Retry] = known ?? (code < 4000 ? ['connection_lost', 'backoff'] : ['closed', 'never'])
  return new RegistryError(name, `connection closed (${code}${reason === '' ? '' : ` ${reason}`})`, { closeCode: code, retry })
}

const refusals: Record<number, RefusalCode> = {
  400: 'invalid_project',
  401: 'unauthorized',
  403: 'forbidden',
  429: 'too_many_connections',
  503: 'unavailable'
}

/**
 * PROTOCOL.md §2: a refused upgrade. 401/403/400 will not change by retrying; a full
 * registry (429) or an unreachable store (503) may.
 */
export function refusalError (status: number, code?: string, message?: string): RegistryError {
  const name = (code as RefusalCode | undefined) ?? refusals[status] ?? 'connection_failed'
  const retry: Retry = status === 429 || status >= 500 ? 'backoff' : 'never'
  return new RegistryError(name, message ?? `upgrade refused with HTTP ${status}`, { status, retry })
}
