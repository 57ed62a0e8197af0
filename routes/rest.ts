import type { FastifyInstance } from 'fastify'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { isGranted, type RegistryUser } from '../services/auth.ts'
import { Peer, ProjectId } from '../services/frames.ts'
import { tokenFrom } from '../plugins/auth.ts'
import { RefusalBody, refuse, requestSerializer } from './refuse.ts'

const users = new WeakMap<object, RegistryUser>()

/** PROTOCOL.md §5. */
export default async function restRoutes (fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { presence } = fastify.registryStore
  const config = fastify.registryConfig

  app.get('/v1/projects/:projectId/peers', {
    logSerializers: { req: requestSerializer },
    schema: {
      summary: 'The project\'s online peers, cluster-wide',
      security: [{ bearer: [] }],
      params: Type.Object({ projectId: ProjectId }),
      response: {
        200: Type.Object({ projectId: Type.String(), peers: Type.Array(Peer) }),
        400: RefusalBody,
        401: RefusalBody,
        403: RefusalBody,
        503: RefusalBody
      }
    },
    // Checked in the order 401, 400, 403: auth here, params by the schema, grant after.
    preValidation: async (request, reply) => {
      const token = tokenFrom(request, false)
      if (token === undefined || token === '') return refuse(reply, 'unauthorized', 'missing bearer token')
      const verified = fastify.registryVerify(token)
      if (!verified.ok) return refuse(reply, 'unauthorized', verified.message)
      users.set(request, verified.user)
    },
    preHandler: async (request, reply) => {
      const user = users.get(request) as RegistryUser
      if (!await isGranted(user, request.params.projectId, config.authorize)) {
        return refuse(reply, 'forbidden', `project ${request.params.projectId} is not granted`)
      }
    }
  }, async (request, reply) => {
    const listed = await presence.list(request.params.projectId)
    if (!listed.ok) return refuse(reply, 'unavailable', listed.message)
    return { projectId: request.params.projectId, peers: listed.peers }
  })

  app.get('/healthz', {
    schema: { summary: 'Liveness', response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      summary: 'Readiness: 200 while the presence store answers',
      response: { 200: Type.Object({ status: Type.Literal('ready') }), 503: RefusalBody }
    }
  }, async (_request, reply) => {
    if (!presence.isAvailable() || fastify.registryHub.draining) return refuse(reply, 'unavailable', 'the presence store is unreachable')
    return { status: 'ready' as const }
  })
}
