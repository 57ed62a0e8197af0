// Churn: thousands of connections that come and go, cleanly or not, leave nothing behind.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import registry from '../app.ts'
import type { Hub } from '../services/hub.ts'
import { LocalBus } from '../services/bus/local.ts'
import { MemoryPresence } from '../services/presence/memory.ts'
import { secret, token } from './helpers/app.ts'

const cycles = 5000
const workers = 25

/** One connection's life: a clean close, a terminate after welcome, or an abort mid-upgrade. */
async function cycle (url: string, jwt: string, i: number): Promise<void> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${jwt}` } })
  const closed = new Promise<void>(resolve => ws.once('close', () => resolve()))
  ws.on('error', () => {})
  if (i % 5 === 4) {
    ws.terminate()
  } else {
    await new Promise<void>(resolve => ws.once('message', () => resolve()))
    if (i % 5 === 3) ws.terminate()
    else ws.close(1000)
  }
  await closed
}

/** A bounded poll: the server side releases asynchronously and announces nothing to poll on. */
async function until (check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
  return check()
}

t.test(`${cycles} connect/close cycles leave the hub, presence and bus empty`, async t => {
  const bus = new LocalBus()
  const presence = new MemoryPresence(bus)
  const app: FastifyInstance = Fastify()
  let hub: Hub | undefined
  // The hub lives in the plugin's own context; a request's `server` is that context.
  app.addHook('onRequest', async (request) => { hub ??= request.server.registryHub })
  await app.register(registry, { jwt: { secret }, store: { presence, bus }, limits: { heartbeatMs: 50 } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const timersBefore = process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  const listeners = (): number[] => ['upgrade', 'connection', 'request'].map(e => app.server.listenerCount(e))
  const listenersBefore = listeners()

  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    const jwt = token({ sub: `user${w % 5}` })
    for (let i = w; i < cycles; i += workers) await cycle(`ws://127.0.0.1:${port}/v1/ws?project=p${i % 7}`, jwt, i)
  }))
  t.ok(hub !== undefined, 'reached the hub')
  const h = hub as Hub
  t.ok(await until(() => h.size === 0), `hub.size is 0 (${h.size})`)
  t.equal(h.projectCount, 0, 'hub.projectCount')
  t.equal(h.heartbeatRunning, false, 'the heartbeat stopped with the last peer')
  t.equal(presence.size, 0, 'MemoryPresence holds no project and no user')
  t.equal(bus.size, 1, 'LocalBus holds only this node\'s own channel')
  // A presence event's write may still wait out its 10 ms batching window: a timer that ends, not one left behind.
  const timers = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  t.ok(await until(() => timers() <= timersBefore, 1000), `no timer left behind (${timersBefore} before, ${timers()} after)`)
  t.same(listeners(), listenersBefore, 'no listener left on the server')

  const peers = await fetch(`http://127.0.0.1:${port}/v1/projects/p1/peers`, { headers: { authorization: `Bearer ${token()}` } })
  t.same((await peers.json()).peers, [], 'REST lists nobody')
  await app.close()
  t.equal(bus.size, 0, 'the hub left the bus')
  const sockets = (): string[] => process.getActiveResourcesInfo().filter(r => r === 'TCPServerWrap' || r === 'TCPSocketWrap')
  t.ok(await until(() => sockets().length === 0, 2000), `app.close() left no server or socket open (${sockets().join()})`)
})
