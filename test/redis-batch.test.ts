// Publishes close together share one SPUBLISH (services/redis/link.ts); the framing must give
// back exactly the payloads, in order, whatever they hold.
import t from 'tap'
import { Redis } from 'ioredis'
import { batch, unbatch } from '../services/redis/keys.ts'
import { RedisLink, type RedisClient } from '../services/redis/link.ts'
import { startRedis, until } from './helpers/redis.ts'

t.test('batch and unbatch round-trip any payloads in order', async t => {
  const payloads = ['s|p1|a|{"type":"signal","data":"x|y|12|z"}', '', 'm|3|abc', 'é😀|', 'b|p|f|n|{"data":"' + 'q'.repeat(70000) + '"}']
  t.same(unbatch(batch(payloads)), payloads)
  t.same(unbatch(batch([payloads[0]])), [payloads[0]], 'a lone payload travels unframed')
  t.equal(batch([payloads[0]]), payloads[0])
})

t.test('a malformed batch gives what came before the fault, never throws', async t => {
  t.same(unbatch('m|3|abc4|de'), ['abc'], 'truncated entry dropped')
  t.same(unbatch('m|x|abc'), [], 'bad length')
  t.same(unbatch('m|-1|'), [])
  t.same(unbatch('m|'), [])
})

t.test('publishes share an SPUBLISH only when they come faster than the window, always in order', async t => {
  const redis = await startRedis(t)
  const cmd = new Redis(redis.port, '127.0.0.1', { lazyConnect: true })
  const sub = new Redis(redis.port, '127.0.0.1', { lazyConnect: true })
  const reader = new Redis(redis.port, '127.0.0.1')
  t.teardown(() => { cmd.disconnect(); sub.disconnect(); reader.disconnect() })
  await Promise.all([cmd.connect(), sub.connect()])
  const link = new RedisLink(cmd as unknown as RedisClient, sub as unknown as RedisClient)
  await link.start()
  t.teardown(() => link.close())
  const got: string[] = []
  reader.on('smessage', (_channel: string, message: string) => got.push(...unbatch(message)))
  await reader.ssubscribe('c')
  const spublishes = async (): Promise<number> => Number(/cmdstat_spublish:calls=(\d+)/.exec(await redis.cli('INFO', 'commandstats'))?.[1] ?? 0)
  const sent: string[] = []
  const publish = (n: number): void => { for (let i = 0; i < n; i++) { const p = `m${sent.length}`; sent.push(p); link.publish('c', p) } }
  const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

  publish(100)
  await until(() => got.length === sent.length)
  t.equal(await spublishes(), 1, 'a burst within one turn: one SPUBLISH')

  for (let i = 0; i < 10; i++) {
    await pause(20)
    publish(1)
  }
  await until(() => got.length === sent.length)
  t.equal(await spublishes(), 11, 'a quiet stream: one SPUBLISH each, none held for company')

  // 2,000 messages, 20 per turn, a turn every few hundred µs: a busy relay.
  for (let i = 0; i < 100; i++) {
    publish(20)
    await new Promise(resolve => setImmediate(resolve))
  }
  await until(() => got.length === sent.length)
  const busy = await spublishes() - 11
  t.ok(busy < 100, `a busy stream: ${busy} SPUBLISH for 100 turns of 20 messages`)
  t.same(got, sent, 'every message once, in the order published')
})
