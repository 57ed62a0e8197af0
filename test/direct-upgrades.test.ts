// `directUpgrades` (server.ts sets it): upgrades to /v1/ws are admitted before Fastify's request
// lifecycle. The handshake's whole contract (connect.test.ts) runs again on that path; below,
// what only this path has.
import t from 'tap'
import { build, token } from './helpers/app.ts'
import { connect, refused } from './helpers/peer.ts'

process.env.REGISTRY_TEST_DIRECT_UPGRADES = '1'
await import('./connect.test.ts')

t.test('direct: an admitted upgrade skips Fastify\'s request lifecycle; a refusal goes through it', async t => {
  const { wsUrl, logs } = await build(t, { captureLogs: 'info', prefix: '/reg' })
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  const connected = logs.find(l => l.msg === 'peer connected')
  t.match(connected, { peerId: a.peerId, projectId: 'p1', userId: 'a' }, 'the peer is logged')
  t.equal(logs.filter(l => l.msg === 'incoming request').length, 0, 'Fastify never saw the admitted upgrade')

  const r = await refused(wsUrl('p1'), { token: 'not-a-jwt' })
  t.same([r.status, r.body.code, r.body.message], [401, 'unauthorized', 'malformed token'], 'the refusal found before Fastify, answered by it')
  const answered = logs.find(l => l.msg === 'request completed')
  t.match(answered, { res: { statusCode: 401 } }, 'with Fastify\'s own request log')
  t.equal(logs.filter(l => l.msg === 'incoming request').length, 1, 'once')
})

t.test('direct: a query that names a parameter twice is refused as the routed path refuses it', async t => {
  const { wsUrl } = await build(t)
  const twice = await refused(`${wsUrl('p1')}&project=p2`, { token: token() })
  t.same([twice.status, twice.body.code], [400, 'invalid_project'])
  const tokens = await refused(`${wsUrl('p1')}&access_token=${token()}&access_token=${token()}`)
  t.same([tokens.status, tokens.body.code, tokens.body.message], [401, 'unauthorized', 'missing bearer token'])
})
