// PROTOCOL.md §5: the REST routes, refusals in the order 401, 400, 403, and the OpenAPI document.
import t from 'tap'
import Fastify from 'fastify'
import registry from '../app.ts'
import type { Hub } from '../services/hub.ts'
import { build, secret, token } from './helpers/app.ts'
import { connect, refused } from './helpers/peer.ts'
import { switchableStore } from './helpers/stores.ts'

async function get (url: string, jwt?: string): Promise<{ status: number, body: Record<string, any>, type: string }> {
  const res = await fetch(url, jwt === undefined ? {} : { headers: { authorization: `Bearer ${jwt}` } })
  return { status: res.status, body: await res.json() as Record<string, any>, type: res.headers.get('content-type') ?? '' }
}

t.test('GET /v1/projects/:projectId/peers lists the project\'s peers', async t => {
  const { url, wsUrl } = await build(t)
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a', name: 'Ann', email: 'a@example.com' }) })
  await connect(t, wsUrl('p2'), { token: token({ sub: 'b' }) })
  const r = await get(`${url}/v1/projects/p1/peers`, token())
  t.equal(r.status, 200)
  t.match(r.type, /^application\/json/)
  t.same(r.body, { projectId: 'p1', peers: [{ peerId: a.peerId, userId: 'a', name: 'Ann', meta: {}, connectedAt: r.body.peers[0].connectedAt }] }, 'exactly the contract fields, no email')
  t.same(await get(`${url}/v1/projects/empty/peers`, token()).then(x => x.body), { projectId: 'empty', peers: [] })
})

t.test('refusals in the order 401, 400, 403, each with the contract body', async t => {
  // As server.ts does: project ids reach 128 characters, Fastify's default stops at 100.
  const { url } = await build(t, { fastify: { routerOptions: { maxParamLength: 1024 } } })
  const narrow = token({ projects: ['p1'] })
  const cases: Array<[string, string, string | undefined, number, string]> = [
    ['no token', 'p1', undefined, 401, 'unauthorized'],
    ['a bad token', 'p1', 'x.y.z', 401, 'unauthorized'],
    ['an expired token', 'p1', token({ exp: Math.floor(Date.now() / 1000) - 60 }), 401, 'unauthorized'],
    ['no token and a bad project', 'a%20b', undefined, 401, 'unauthorized'],
    ['a bad project', 'a%20b', narrow, 400, 'invalid_project'],
    ['a project of 129 characters', 'x'.repeat(129), narrow, 400, 'invalid_project'],
    ['a bad project not granted either', 'bad!', narrow, 400, 'invalid_project'],
    ['a project not granted', 'p2', narrow, 403, 'forbidden']
  ]
  for (const [name, project, jwt, status, code] of cases) {
    const r = await get(`${url}/v1/projects/${project}/peers`, jwt)
    t.same(r.body, { statusCode: status, code, error: r.body.error, message: r.body.message }, `${name}: body`)
    t.same([r.status, r.body.code], [status, code], name)
    t.type(r.body.message, 'string')
  }
  const query = await get(`${url}/v1/projects/p1/peers?access_token=${token()}`)
  t.same([query.status, query.body.code], [401, 'unauthorized'], '?access_token= is for browser upgrades only')
  t.equal((await get(`${url}/v1/projects/p1/peers`, narrow)).status, 200)
  t.equal((await get(`${url}/v1/projects/${'x'.repeat(128)}/peers`, token())).status, 200, 'a project id of 128 characters')
})

t.test('the authorize hook decides REST access too', async t => {
  const { url } = await build(t, { registry: { authorize: (user, projectId) => projectId === `own-${user.sub}` } })
  t.equal((await get(`${url}/v1/projects/own-alice/peers`, token({ projects: [] }))).status, 200)
  const r = await get(`${url}/v1/projects/p1/peers`, token({ projects: ['p1'] }))
  t.same([r.status, r.body.code], [403, 'forbidden'])
})

t.test('healthz, readyz, and 503 unavailable while the store is unreachable', async t => {
  const store = switchableStore()
  const { url } = await build(t, { registry: { store } })
  t.same(await get(`${url}/healthz`), { status: 200, body: { status: 'ok' }, type: 'application/json; charset=utf-8' })
  t.same((await get(`${url}/readyz`)).body, { status: 'ready' })
  store.presence.up = false
  const ready = await get(`${url}/readyz`)
  t.same([ready.status, ready.body.code], [503, 'unavailable'])
  const peers = await get(`${url}/v1/projects/p1/peers`, token())
  t.same([peers.status, peers.body.code], [503, 'unavailable'])
  t.equal((await get(`${url}/healthz`)).status, 200, 'still alive')
  const bad = await get(`${url}/v1/projects/p1/peers`)
  t.equal(bad.status, 401, 'auth is still checked first')
})

t.test('/openapi.json documents the REST routes from their schemas', async t => {
  const { url } = await build(t, { prefix: '/registry' })
  const r = await get(`${url}/openapi.json`)
  t.equal(r.status, 200)
  t.match(r.body.openapi, /^3\./)
  const paths = Object.keys(r.body.paths).sort()
  t.same(paths, ['/registry/healthz', '/registry/readyz', '/registry/v1/projects/{projectId}/peers'])
  const peers = r.body.paths['/registry/v1/projects/{projectId}/peers'].get
  t.same(Object.keys(peers.responses).sort(), ['200', '400', '401', '403', '503'])
  t.same(peers.security, [{ bearer: [] }])
  t.equal(peers.parameters[0].schema.pattern, '^[A-Za-z0-9._-]{1,128}$')
})

t.test('an unknown path is 404', async t => {
  const { url } = await build(t)
  t.equal((await fetch(`${url}/v2/nothing`)).status, 404)
})

t.test('while draining (what preClose starts): peers closed 1001, readyz and upgrades 503', async t => {
  const app = Fastify()
  let hub: Hub | undefined
  // The hub lives in the plugin's own context; a request's `server` is that context.
  app.addHook('onRequest', async (request) => { hub ??= request.server.registryHub })
  await app.register(registry, { jwt: { secret } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  const base = `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const peer = await connect(t, `ws://${base}/v1/ws?project=p1`, { token: token() })
  t.same((await get(`http://${base}/readyz`)).body, { status: 'ready' })
  hub?.drain()
  t.equal((await peer.closed).code, 1001)
  const ready = await get(`http://${base}/readyz`)
  t.same([ready.status, ready.body.code], [503, 'unavailable'])
  const r = await refused(`ws://${base}/v1/ws?project=p1`, { token: token() })
  t.same([r.status, r.body.code], [503, 'unavailable'], 'a new upgrade is refused')
  t.equal((await get(`http://${base}/healthz`)).status, 200, 'still alive while draining')
})
