import type { FastifyInstance } from 'fastify'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Profiler, ProfilerBusyError } from '../services/profiler.ts'

export interface AdminOptions {
  /** Shared with the caller so tests and a host can see whether a capture runs. */
  profiler?: Profiler
}

/**
 * The admin listener's routes (server.ts serves them only when ADMIN_PORT is set, on
 * ADMIN_HOST, 127.0.0.1 by default): they expose the process's memory and code, so they
 * never share the public port.
 */
export default async function adminRoutes (fastify: FastifyInstance, opts: AdminOptions): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const profiler = opts.profiler ?? new Profiler()
  const busy = { statusCode: 409, code: 'busy', error: 'Conflict', message: 'a profile or heap snapshot is already being taken' }

  app.get('/debug/profile', {
    schema: {
      summary: 'CPU profile of the running process (.cpuprofile JSON)',
      querystring: Type.Object({
        seconds: Type.Number({ minimum: 0.05, maximum: 300, default: 10 }),
        intervalUs: Type.Integer({ minimum: 50, maximum: 100000, default: 1000 })
      })
    }
  }, async (request, reply) => {
    try {
      const profile = await profiler.cpu(request.query.seconds * 1000, request.query.intervalUs)
      const name = `registry-${process.pid}-${Date.now()}.cpuprofile`
      return await reply.type('application/json').header('content-disposition', `attachment; filename="${name}"`).send(JSON.stringify(profile))
    } catch (err) {
      if (err instanceof ProfilerBusyError) return await reply.code(409).send(busy)
      throw err
    }
  })

  app.get('/debug/heap', {
    schema: { summary: 'Heap snapshot of the running process (.heapsnapshot JSON); pauses it while taken' }
  }, async (_request, reply) => {
    try {
      const stream = await profiler.heap()
      const name = `registry-${process.pid}-${Date.now()}.heapsnapshot`
      return await reply.type('application/json').header('content-disposition', `attachment; filename="${name}"`).send(stream)
    } catch (err) {
      if (err instanceof ProfilerBusyError) return await reply.code(409).send(busy)
      throw err
    }
  })
}
