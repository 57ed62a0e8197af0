// Standalone entry: environment → options, logger, listen, graceful shutdown. Nothing else.
import './services/gc-tuning.ts'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import closeWithGrace from 'close-with-grace'
import { createSigner } from 'fast-jwt'
import registry from './app.ts'
import adminRoutes from './plugins/admin.ts'
import { EnvError, heapSnapshotSignal, readEnv } from './services/env.ts'
import { redactUrl, refusalBody } from './routes/refuse.ts'

let env
try {
  env = readEnv(process.env, () => randomBytes(32).toString('base64url'))
} catch (err) {
  if (!(err instanceof EnvError)) throw err
  process.stderr.write(`workstream-registry: ${err.message}\n`)
  process.exit(1)
}

const app = Fastify({
  logger: {
    level: env.logLevel,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'token'], censor: '[REDACTED]' },
    serializers: {
      req: (req: { method: string, url: string, host?: string, ip?: string }) => ({ method: req.method, url: redactUrl(req.url), host: req.host, remoteAddress: req.ip })
    }
  },
  // PROTOCOL.md §4: request headers, the upgrade's included, complete within 20 s.
  requestTimeout: 20000,
  http: { headersTimeout: 20000, requestTimeout: 20000, connectionsCheckingInterval: 2000 },
  forceCloseConnections: true,
  // Project ids may be 128 characters (PROTOCOL.md §1) and Fastify answers 414 past 100, before
  // any auth; longer ones still get §5's 401/400 in order, up to this.
  routerOptions: { maxParamLength: 1024 }
})

// Fastify's own 404 logs the raw URL, ?access_token= included (PROTOCOL.md §1).
app.setNotFoundHandler((request, reply) => {
  reply.code(404).send(refusalBody('not_found', `no route for ${request.method} ${redactUrl(request.url)}`))
})

// Our own Fastify instance: no host's hooks to run on an upgrade, so admit upgrades directly.
await app.register(registry, { ...env.options, redis: env.redisUrl, directUpgrades: true })

// Profiling and heap snapshots (plugins/admin.ts) on their own listener, only when asked for.
const admin = env.adminPort === undefined ? undefined : Fastify({ loggerInstance: app.log.child({ listener: 'admin' }) })
if (admin !== undefined) await admin.register(adminRoutes)

const snapshotSignal = heapSnapshotSignal(process.execArgv, process.env.NODE_OPTIONS)
// A signal close-with-grace does not know of is one it never listens for: skipping it is harmless.
closeWithGrace({ delay: 10000, skip: snapshotSignal === undefined ? [] : [snapshotSignal as closeWithGrace.AllEvents] }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await admin?.close()
  await app.close()
})

try {
  await app.listen({ host: env.host, port: env.port })
  if (admin !== undefined) await admin.listen({ host: env.adminHost, port: env.adminPort })
} catch (err) {
  app.log.error({ err }, 'could not listen')
  process.exit(1)
}

if (env.devSecret) {
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : env.port
  const sign = createSigner({ key: env.options.jwt.secret as string, algorithm: 'HS256', expiresIn: 24 * 3600 * 1000 })
  const token = sign({ sub: 'demo-user', name: 'Demo User', projects: ['*'] })
  app.log.warn('JWT_SECRET is not set: using a random secret for this run only (refused when NODE_ENV=production)')
  process.stdout.write([
    '',
    'Demo token (valid 24 h, any project):',
    `  ${token}`,
    'Connect:',
    `  npx wscat -c "ws://${env.host}:${port}/v1/ws?project=demo" -H "Authorization: Bearer ${token}"`,
    `  curl -H "Authorization: Bearer ${token}" http://${env.host}:${port}/v1/projects/demo/peers`,
    // The fragment never leaves the browser: the token reaches neither a server nor its logs.
    ...(env.options.demo === true ? ['Demo page (open it in two tabs):', `  http://${env.host}:${port}/demo#project=demo&token=${token}`] : []),
    ''
  ].join('\n') + '\n')
}
