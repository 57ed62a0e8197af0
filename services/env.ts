// The standalone server's environment (DESIGN.md "Configuration") mapped onto the plugin's
// options, so both are checked by one schema; every failure names the variable.
import { checkRegistryOptions, type RegistryOptionsData } from './options.ts'

export interface ServerEnv {
  host: string
  port: number
  logLevel: string
  redisUrl: string | undefined
  adminHost: string
  adminPort: number | undefined
  production: boolean
  /** True when no key was configured and a random dev secret was made up. */
  devSecret: boolean
  options: RegistryOptionsData
}

type Env = Record<string, string | undefined>

const limitVars = {
  MAX_FRAME_BYTES: 'maxFrameBytes',
  RATE_LIMIT_PER_SEC: 'rateLimitPerSec',
  RATE_LIMIT_BURST: 'rateLimitBurst',
  MAX_PEERS_PER_PROJECT: 'maxPeersPerProject',
  MAX_CONNECTIONS_PER_USER: 'maxConnectionsPerUser',
  MAX_BUFFERED_BYTES: 'maxBufferedBytes',
  HEARTBEAT_MS: 'heartbeatMs',
  PRESENCE_TTL_MS: 'presenceTtlMs'
} as const

const levels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

export class EnvError extends Error {}

function num (env: Env, name: string, integer = true): number | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new EnvError(`invalid environment variable ${name}=${JSON.stringify(raw)}: expected a positive ${integer ? 'integer' : 'number'}`)
  }
  return n
}

function list (raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  return raw.split(',').map(s => s.trim()).filter(s => s !== '')
}

/** ICE_SERVERS: a JSON array of RTCIceServer objects for the demo page; checked by the schema. */
function iceServers (raw: string | undefined): RegistryOptionsData['iceServers'] {
  if (raw === undefined || raw.trim() === '') return undefined
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    value = undefined
  }
  if (!Array.isArray(value)) {
    throw new EnvError('invalid environment variable ICE_SERVERS: expected a JSON array such as [{"urls":"stun:stun.example.org:3478"}]')
  }
  return value as RegistryOptionsData['iceServers']
}

/**
 * The signal node's `--heapsnapshot-signal` claims, from its flags or NODE_OPTIONS. It must
 * write a snapshot of the live process, and the shutdown handler would otherwise take it
 * (close-with-grace listens for SIGUSR2, the signal most often given to it, for nodemon).
 */
export function heapSnapshotSignal (execArgv: readonly string[], nodeOptions = ''): string | undefined {
  // The command line overrides NODE_OPTIONS, so it is read last.
  const args = [...nodeOptions.split(/\s+/), ...execArgv]
  let signal: string | undefined
  for (let i = 0; i < args.length; i++) {
    const m = /^--heapsnapshot-signal(?:=(.*))?$/.exec(args[i])
    // Node keeps the last one given, as it does for every flag.
    if (m !== null) signal = m[1] ?? args[i + 1]
  }
  return signal === '' ? undefined : signal
}

/** Reads and validates the environment; throws an EnvError naming the bad variable. */
export function readEnv (env: Env, makeSecret: () => string): ServerEnv {
  const production = env.NODE_ENV === 'production'
  const port = num(env, 'PORT') ?? 8080
  if (port > 65535) throw new EnvError(`invalid environment variable PORT=${port}: expected 1-65535`)
  const adminPort = num(env, 'ADMIN_PORT')
  if (adminPort !== undefined && adminPort > 65535) throw new EnvError(`invalid environment variable ADMIN_PORT=${adminPort}: expected 1-65535`)
  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!levels.has(logLevel)) throw new EnvError(`invalid environment variable LOG_LEVEL=${JSON.stringify(logLevel)}: expected one of ${[...levels].join(', ')}`)
  const secret = env.JWT_SECRET === '' ? undefined : env.JWT_SECRET
  const publicKey = env.JWT_PUBLIC_KEY === '' ? undefined : env.JWT_PUBLIC_KEY?.replaceAll('\\n', '\n')
  if (secret !== undefined && publicKey !== undefined) throw new EnvError('invalid environment: set JWT_SECRET or JWT_PUBLIC_KEY, not both')
  const devSecret = secret === undefined && publicKey === undefined
  if (devSecret && production) throw new EnvError('JWT_SECRET or JWT_PUBLIC_KEY is required when NODE_ENV=production')

  const limits: Record<string, number> = {}
  for (const [name, key] of Object.entries(limitVars)) {
    const v = num(env, name, key !== 'rateLimitPerSec')
    if (v !== undefined) limits[key] = v
  }
  const options: RegistryOptionsData = {
    jwt: {
      ...(devSecret ? { secret: makeSecret() } : secret !== undefined ? { secret } : { publicKey }),
      ...(env.JWT_ISSUER ? { issuer: env.JWT_ISSUER } : {}),
      ...(env.JWT_AUDIENCE ? { audience: env.JWT_AUDIENCE } : {})
    },
    limits,
    demo: env.DEMO !== 'false'
  }
  const origins = list(env.ALLOWED_ORIGINS)
  if (origins !== undefined) options.allowedOrigins = origins
  const ice = iceServers(env.ICE_SERVERS)
  if (ice !== undefined) options.iceServers = ice
  if (env.NODE_ID) options.nodeId = env.NODE_ID
  const bad = checkRegistryOptions.Errors(options).First()
  if (bad !== undefined) {
    const key = bad.path.split('/').at(-1) ?? ''
    const name = bad.path.startsWith('/iceServers') ? 'ICE_SERVERS' : Object.entries(limitVars).find(([, k]) => k === key)?.[0] ?? (key === 'nodeId' ? 'NODE_ID' : key)
    throw new EnvError(`invalid environment variable ${name}: ${bad.message}`)
  }
  return {
    host: env.HOST ?? '127.0.0.1',
    port,
    logLevel,
    redisUrl: env.REDIS_URL === '' ? undefined : env.REDIS_URL,
    adminHost: env.ADMIN_HOST ?? '127.0.0.1',
    adminPort,
    production,
    devSecret,
    options
  }
}
