// The registry as one plugin inside a host app (issue 3 "What to build", STYLE.md §2 and §7).
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import WebSocket from 'ws'
import registry from '../app.ts'
import { secret, token } from './helpers/app.ts'
import { connect, refused } from './helpers/peer.ts'

const hostSecret = 'the-host-has-its-own-secret-for-its-own-users'

/** A host with its own routes, JWT setup and error handler; optionally its own @fastify/websocket. */
async function host (t: Test, withWebsocket: boolean): Promise<{ app: FastifyInstance, base: string }> {
  const app = Fastify({ routerOptions: { maxParamLength: 1024 } })
  await app.register(fastifyJwt, { secret: hostSecret })
  app.setErrorHandler((err: Error, _request, reply) => { reply.code(418).send({ host: true, message: err.message }) })
  if (withWebsocket) {
    await app.register(fastifyWebsocket)
    app.get('/host-ws', { websocket: true }, (socket) => { socket.on('message', (d: Buffer) => socket.send(`echo ${d.toString()}`)) })
  }
  app.get('/hello', async () => ({ hello: 'host' }))
  app.get('/boom', async () => { throw new Error('host failure') })
  app.get('/me', async (request) => { await request.jwtVerify(); return request.user })
  await app.register(registry, { prefix: '/registry', jwt: { secret }, limits: { maxFrameBytes: 1024 } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { app, base: `127.0.0.1:${port}` }
}

for (const withWebsocket of [false, true]) {
  const mode = withWebsocket ? 'a host that registered @fastify/websocket' : 'a plain host'
  t.test(`${mode}: routes, JWT and error handler coexist under a prefix`, async t => {
    const { app, base } = await host(t, withWebsocket)
    t.same(await (await fetch(`http://${base}/hello`)).json(), { hello: 'host' }, 'the host\'s route')
    const boom = await fetch(`http://${base}/boom`)
    t.same([boom.status, await boom.json()], [418, { host: true, message: 'host failure' }], 'the host\'s error handler')
    const me = await fetch(`http://${base}/me`, { headers: { authorization: `Bearer ${app.jwt.sign({ sub: 'host-user' })}` } })
    t.match(await me.json(), { sub: 'host-user' }, 'the host\'s own JWT setup')
    const ours = await fetch(`http://${base}/registry/v1/projects/p1/peers`, { headers: { authorization: `Bearer ${app.jwt.sign({ sub: 'host-user', projects: ['*'] })}` } })
    t.same([ours.status, (await ours.json()).code], [401, 'unauthorized'], 'a host token is not ours: our own key, our own body')
    const bad = await fetch(`http://${base}/registry/v1/projects/a%20b/peers`, { headers: { authorization: `Bearer ${token()}` } })
    t.same([bad.status, (await bad.json()).code], [400, 'invalid_project'], 'our error handler keeps the contract body')
    t.equal((await fetch(`http://${base}/healthz`)).status, 404, 'nothing of ours outside the prefix')
    t.same(await (await fetch(`http://${base}/registry/healthz`)).json(), { status: 'ok' })
    const r = await refused(`ws://${base}/registry/v1/ws?project=p1`, {})
    t.same([r.status, r.body.code], [401, 'unauthorized'])
  })

  t.test(`${mode}: peers under the prefix, limits applied, 1001 on app.close()`, async t => {
    const { app, base } = await host(t, withWebsocket)
    const url = `ws://${base}/registry/v1/ws?project=p1`
    const a = await connect(t, url, { token: token({ sub: 'a' }) })
    const b = await connect(t, url, { token: token({ sub: 'b' }) })
    await a.nextOf('peer-joined')
    b.send({ type: 'signal', to: a.peerId, data: 'inside', id: 's' })
    t.same(await a.next(), { type: 'signal', from: b.peerId, data: 'inside' })
    if (withWebsocket) {
      const echo = new WebSocket(`ws://${base}/host-ws`)
      t.teardown(() => echo.terminate())
      await new Promise(resolve => echo.once('open', resolve))
      echo.send('hi')
      t.equal(String(await new Promise(resolve => echo.once('message', resolve))), 'echo hi', 'the host\'s own WebSocket route still works')
    }
    const c = await connect(t, url, { token: token({ sub: 'c' }) })
    c.send({ type: 'broadcast', data: 'x'.repeat(1100) })
    t.equal((await c.closed).code, 1009, 'our maxFrameBytes holds even on the host\'s WebSocket server')
    const closes = [a.closed, b.closed]
    await app.close()
    const [ca, cb] = await Promise.all(closes)
    t.same([ca.code, cb.code], [1001, 1001], 'our peers close with 1001')
  })
}

t.test('a host whose WebSocket server negotiates permessage-deflate: frames keep their order', async t => {
  // Our sockets write whole frames themselves unless ws holds frames back to compress them;
  // a compressing host must still get every frame, compressed by ws, in order.
  const app = Fastify()
  await app.register(fastifyWebsocket, { options: { perMessageDeflate: { threshold: 0 } } })
  await app.register(registry, { prefix: '/registry', jwt: { secret } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  const url = `ws://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/registry/v1/ws?project=p1`
  const a = await connect(t, url, { token: token({ sub: 'a' }) })
  t.match(a.ws.extensions, /permessage-deflate/, 'the client and the host agreed on compression')
  const b = await connect(t, url, { token: token({ sub: 'b' }) })
  t.equal((await a.next()).type, 'peer-joined')
  const wire = (a.ws as unknown as { _socket: { bytesRead: number } })._socket
  const before = wire.bytesRead
  for (let i = 0; i < 50; i++) b.send({ type: 'signal', to: a.peerId, data: { i, pad: 'x'.repeat(i * 20) } })
  b.send({ type: 'broadcast', data: 'last' })
  const got: unknown[] = []
  for (let i = 0; i < 51; i++) got.push((await a.next()).data)
  t.same(got, [...Array.from({ length: 50 }, (_, i) => ({ i, pad: 'x'.repeat(i * 20) })), 'last'], 'every frame, in the order sent')
  t.ok(wire.bytesRead - before < 12_000, `compressed by ws: ${wire.bytesRead - before} bytes for 24,500 bytes of padding`)
})

t.test('bad options fail the boot with one line naming the option', async t => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no key', { jwt: {} }, /jwt: set either secret/],
    ['both keys', { jwt: { secret, publicKey: 'x' } }, /jwt: set secret or publicKey, not both/],
    ['a limit out of range', { jwt: { secret }, limits: { heartbeatMs: 1 } }, /registry option limits\.heartbeatMs/],
    ['an unknown limit', { jwt: { secret }, limits: { maxFoo: 1 } }, /registry option limits/],
    ['a misspelled option', { jwt: { secret }, limit: { heartbeatMs: 1000 } }, /registry option limit: /],
    ['a bad origin list', { jwt: { secret }, allowedOrigins: 'https://x.example' }, /registry option allowedOrigins/],
    ['a key that is not a key', { jwt: { publicKey: 'not a pem' } }, /./],
    ['authorize not a function', { jwt: { secret }, authorize: 'yes' }, /authorize: must be a function/]
  ]
  for (const [name, opts, message] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(registry, opts as unknown as Parameters<typeof registry>[1])
    const err = await app.ready().then(() => undefined, (e: Error) => e)
    t.match(err?.message ?? 'booted', message, name)
    t.notMatch(err?.message ?? '', /\n/, `${name}: one line`)
  }
})
