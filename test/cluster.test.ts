import t from 'tap'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import registry from '../app.ts'
import { build, secret } from './helpers/app.ts'
import { join, multiNodeSuite } from './presence-contract-cluster.ts'
import { startRedis } from './helpers/redis.ts'

multiNodeSuite(t, 'one redis', async (t) => (await startRedis(t)).url)

t.test('a host\'s own @fastify/redis client, and the Redis metrics', async t => {
  const redis = await startRedis(t)
  const host = Fastify()
  await host.register(fastifyRedis, { url: redis.url })
  await host.register(registry, { jwt: { secret }, nodeId: 'embedded', redis: { client: host.redis } })
  await host.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => host.close())
  const address = host.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const other = await build(t, { registry: { redis: redis.url, nodeId: 'standalone' } })
  const a = await join(t, { ...other, url: `http://127.0.0.1:${port}`, wsUrl: (p: string) => `ws://127.0.0.1:${port}/v1/ws?project=${p}` }, 'm')
  const b = await join(t, other, 'm')
  b.send({ type: 'signal', to: a.peerId, data: 'hi', id: 'h' })
  t.same(await a.nextOf('signal'), { type: 'signal', from: b.peerId, data: 'hi' })
  t.same(await b.nextOf('ack'), { type: 'ack', id: 'h' })
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  t.match(text, /registry_redis_command_seconds_count\{[^}]*command="join"[^}]*\} [1-9]/)
  t.match(text, /registry_redis_pubsub_messages_total\{[^}]*direction="in"[^}]*\} [1-9]/)
  t.match(text, /registry_redis_reconnects_total\{[^}]*\} 0/)
  t.match(text, /registry_redis_liveness_age_seconds\{[^}]*\} [0-9.]+/)
  t.equal(host.redis.status, 'ready', 'the host\'s client is the host\'s to close')
})

t.test('a bad redis option fails the boot with one line naming it', async t => {
  await t.rejects(build(t, { registry: { redis: 'localhost:6379' } }), /registry option redis: "localhost:6379" is not a redis:\/\/ or rediss:\/\/ URL/)
  await t.rejects(build(t, { registry: { redis: { client: {} } as never } }), /registry option redis: expected a URL/)
})
