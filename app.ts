import { createServer } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import fastifySwagger from '@fastify/swagger'
import configPlugin, { resolveConfig, type RegistryOptions } from './plugins/config.ts'
import authPlugin from './plugins/auth.ts'
import storePlugin from './plugins/store.ts'
import hubPlugin from './plugins/hub.ts'
import metricsPlugin from './plugins/metrics.ts'
import wsRoutes from './routes/ws.ts'
import restRoutes from './routes/rest.ts'
import demoRoutes from './routes/demo.ts'
import { refusalBody, refuse, requestSerializer } from './routes/refuse.ts'
import { endUnupgradedSockets } from './routes/upgrades.ts'
import { childLoggerWithBoundSerializers } from './routes/request-logger.ts'
import { Close } from './services/codes.ts'

export type { RegistryOptions } from './plugins/config.ts'
export type { RegistryUser, Authorize } from './services/auth.ts'

/**
 * The whole registry as one encapsulated plugin: `app.register(registry, { prefix, jwt })`.
 * A host's own routes, JWT setup and error handler stay untouched.
 */
export default async function registry (fastify: FastifyInstance, opts: RegistryOptions): Promise<void> {
  const config = resolveConfig(opts)
  // Our routes log their URL without ?access_token= (PROTOCOL.md §1), whatever the host's logger.
  fastify.addHook('onRoute', (route) => {
    route.logSerializers ??= { req: requestSerializer }
    route.childLoggerFactory ??= childLoggerWithBoundSerializers
  })
  const paramLength = fastify.initialConfig.routerOptions?.maxParamLength ?? 100
  if (paramLength < 128) {
    fastify.log.warn({ maxParamLength: paramLength }, 'REST answers 414 for project ids longer than the host\'s routerOptions.maxParamLength; set it to 128')
  }
  await fastify.register(configPlugin, config)
  await fastify.register(metricsPlugin)
  await fastify.register(authPlugin)
  await fastify.register(storePlugin)
  await fastify.register(hubPlugin)

  const hostWebsocket = fastify.hasDecorator('websocketServer')
  if (hostWebsocket && config.directUpgrades) {
    fastify.log.warn('registry option directUpgrades: the host registered @fastify/websocket, which takes every upgrade; Fastify admits them')
  }
  // directUpgrades: routes/ws.ts takes the server's upgrades and passes @fastify/websocket, through
  // this server that never listens, those it does not admit itself.
  const routed = !hostWebsocket && config.directUpgrades ? createServer() : undefined
  if (!hostWebsocket) {
    await fastify.register(fastifyWebsocket, {
      options: {
        ...(routed !== undefined ? { server: routed } : {}),
        maxPayload: config.limits.maxFrameBytes,
        maxFragments: config.limits.maxFragments,
        perMessageDeflate: false,
        // The hub counts our sockets; ws's own Set costs a closure and a listener per client.
        clientTracking: false
      },
      // Its default closes with no code (1005); PROTOCOL.md §4 says 1001.
      preClose: function (this: FastifyInstance, done: (err?: Error) => void) {
        fastify.registryHub.drain()
        this.websocketServer.close(() => {})
        done()
      },
      errorHandler: (err: Error, _socket, request) => { request.log.debug({ err }, 'websocket closed on a protocol error') }
    } as Parameters<typeof fastifyWebsocket>[1])
    const stopEnding = endUnupgradedSockets(routed ?? fastify.server)
    fastify.addHook('onClose', (_instance, done) => { stopEnding(); done() })
  } else {
    fastify.addHook('preClose', (done) => { fastify.registryHub.drain(); done() })
  }

  if (!fastify.hasDecorator('swagger')) {
    await fastify.register(fastifySwagger, {
      openapi: {
        info: { title: 'WorkStream Registry', version: '1' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } }
      }
    })
  }

  fastify.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation !== undefined) {
      const code = err.validationContext === 'params' ? 'invalid_project' : 'bad_request'
      return reply.code(400).send(refusalBody(code, err.message))
    }
    const status = err.statusCode ?? 500
    if (status < 500) return reply.code(status).send({ statusCode: status, code: 'bad_request', error: 'Bad Request', message: err.message })
    request.log.error({ err }, 'request failed')
    return reply.code(500).send({ statusCode: 500, code: 'internal', error: 'Internal Server Error', message: 'internal error' })
  })

  await fastify.register(wsRoutes, { hostWebsocket, routed })
  // The plain HTTP routes, in a context of their own: the upgrade route, where every connection
  // pays for each hook it passes, never runs this one.
  await fastify.register(async (http) => {
    http.addHook('onRequest', refuseUpgrades)
    await http.register(restRoutes)
    if (config.demo) await http.register(demoRoutes, { iceServers: opts.iceServers ?? [] })
    http.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
    if (config.metrics) {
      http.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
        reply.type(fastify.registryMetrics.contentType)
        return await fastify.registryMetrics.metrics()
      })
    }
  })
}

/**
 * @fastify/websocket would accept an upgrade to a plain HTTP route and close it at once
 * without a code; answer it as HTTP instead (docs/protocol.md "Connecting").
 */
function refuseUpgrades (request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  if (request.ws) refuse(reply, 'bad_request', 'this route does not accept WebSocket upgrades')
  else done()
}

export { Close }
