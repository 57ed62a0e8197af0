// One schema for the registry's options: the plugin validates what a host passes, and the
// standalone server maps its environment onto the same shape (DESIGN.md "Configuration").
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

const Positive = Type.Integer({ minimum: 1 })

export const LimitsOptions = Type.Object({
  maxFrameBytes: Type.Optional(Type.Integer({ minimum: 128, maximum: 16 * 1024 * 1024 })),
  maxMetaBytes: Type.Optional(Type.Integer({ minimum: 2, maximum: 65536 })),
  rateLimitPerSec: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  rateLimitBurst: Type.Optional(Positive),
  maxPeersPerProject: Type.Optional(Positive),
  maxConnectionsPerUser: Type.Optional(Positive),
  maxBufferedBytes: Type.Optional(Type.Integer({ minimum: 1024 })),
  heartbeatMs: Type.Optional(Type.Integer({ minimum: 10 })),
  presenceTtlMs: Type.Optional(Type.Integer({ minimum: 100 })),
  clockToleranceMs: Type.Optional(Type.Integer({ minimum: 0 })),
  maxFragments: Type.Optional(Positive),
  /** PROTOCOL.md §4: frames still dropped this long after the first drop close 1008. */
  rateLimitCloseAfterMs: Type.Optional(Positive)
}, { additionalProperties: false })

export const JwtOptions = Type.Object({
  secret: Type.Optional(Type.String({ minLength: 1 })),
  publicKey: Type.Optional(Type.String({ minLength: 1 })),
  issuer: Type.Optional(Type.String({ minLength: 1 })),
  audience: Type.Optional(Type.String({ minLength: 1 }))
}, { additionalProperties: false })

/** A WebRTC ICE server for the demo page (RTCIceServer); TURN needs username and credential. */
const IceUrl = Type.String({ pattern: '^(stun|stuns|turn|turns):[^\\s]+$' })
export const IceServerSchema = Type.Object({
  urls: Type.Union([IceUrl, Type.Array(IceUrl, { minItems: 1 })]),
  username: Type.Optional(Type.String()),
  credential: Type.Optional(Type.String())
}, { additionalProperties: false })
export type IceServer = Static<typeof IceServerSchema>

/** The data part of the plugin's options (functions and clients are checked apart). */
export const RegistryOptionsSchema = Type.Object({
  prefix: Type.Optional(Type.String()),
  jwt: JwtOptions,
  limits: Type.Optional(LimitsOptions),
  allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  nodeId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' })),
  metrics: Type.Optional(Type.Boolean()),
  demo: Type.Optional(Type.Boolean()),
  /** STUN/TURN servers the demo page uses; none means host candidates only (one machine or LAN). */
  iceServers: Type.Optional(Type.Array(IceServerSchema)),
  /**
   * Admit WebSocket upgrades before Fastify's request lifecycle (routes/ws.ts): the standalone
   * server's choice. A host's hooks then never see a successful upgrade; refusals still go
   * through Fastify. Off unless set.
   */
  directUpgrades: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
export type RegistryOptionsData = Static<typeof RegistryOptionsSchema>
export const checkRegistryOptions = TypeCompiler.Compile(RegistryOptionsSchema)

export type ResolvedLimits = Required<Static<typeof LimitsOptions>>

export const defaultLimits: ResolvedLimits = {
  maxFrameBytes: 65536,
  maxMetaBytes: 1024,
  rateLimitPerSec: 100,
  rateLimitBurst: 200,
  maxPeersPerProject: 1000,
  maxConnectionsPerUser: 20,
  maxBufferedBytes: 1048576,
  heartbeatMs: 30000,
  presenceTtlMs: 10000,
  clockToleranceMs: 5000,
  maxFragments: 1024,
  rateLimitCloseAfterMs: 5000
}

export function resolveLimits (given: Static<typeof LimitsOptions> = {}): ResolvedLimits {
  const out = { ...defaultLimits }
  for (const key of Object.keys(defaultLimits) as Array<keyof ResolvedLimits>) {
    const v = given[key]
    if (v !== undefined) out[key] = v
  }
  return out
}

/** First schema error as one line naming the option, for boot-time messages. */
export function firstOptionError (value: unknown): string | undefined {
  const err = checkRegistryOptions.Errors(value).First()
  if (err === undefined) return undefined
  return `registry option ${err.path === '' ? '(root)' : err.path.slice(1).replaceAll('/', '.')}: ${err.message}`
}
