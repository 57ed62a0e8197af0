import { STATUS_CODES } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { refusalStatus, type RefusalCode } from '../services/codes.ts'

/** The body of every refusal (PROTOCOL.md §2), also used as the OpenAPI error schema. */
export const RefusalBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String()
})

export function refusalBody (code: RefusalCode, message: string): { statusCode: number, code: string, error: string, message: string } {
  const statusCode = refusalStatus[code]
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
}

export function refuse (reply: FastifyReply, code: RefusalCode, message: string): FastifyReply {
  const body = refusalBody(code, message)
  return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
}

/** Strips `access_token` from logged URLs, so a token never reaches a log line (§1). */
export function redactUrl (url: string): string {
  return url.includes('access_token=') ? url.replace(/([?&]access_token=)[^&#]*/g, '$1[REDACTED]') : url
}

export const requestSerializer = (req: FastifyRequest): Record<string, unknown> => ({
  method: req.method,
  url: redactUrl(req.url),
  host: req.host,
  remoteAddress: req.ip
})
