// PROTOCOL.md §1 and §2: who may connect, refused before the upgrade in the table's order.
import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, secret, token } from './helpers/app.ts'
import { connect, open, refused } from './helpers/peer.ts'
import { portOf, rawRequest, rawWebSocket, encodeFrame } from './helpers/raw.ts'
import { claims, ecKeys, hmacToken, rsaKeys, unsignedToken } from './helpers/tokens.ts'
import { switchableStore } from './helpers/stores.ts'
import { until } from './helpers/redis.ts'

const now = (): number => Math.floor(Date.now() / 1000)
const defaultLimits = { maxFrameBytes: 65536, maxMetaBytes: 1024, rateLimitPerSec: 100, rateLimitBurst: 200, maxBufferedBytes: 1048576 }

t.test('welcome is the first frame, with exactly the contract fields', async t => {
  const { wsUrl } = await build(t)
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a', name: 'Ann', email: 'a@example.com' }) })
  t.match(a.peerId, /^[A-Za-z0-9_-]{22}$/, 'an unguessable peer id')
  t.same(a.welcome, { type: 'welcome', peerId: a.peerId, projectId: 'p1', peers: [], rev: 1, heartbeatMs: 30000, limits: defaultLimits })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  t.equal(b.welcome.rev, 2, 'welcome counts the newcomer\'s own join')
  t.equal(b.welcome.peers.length, 1)
  const [peer] = b.welcome.peers
  t.same(Object.keys(peer).sort(), ['connectedAt', 'meta', 'name', 'peerId', 'userId'], 'email is never shown')
  t.same(peer, { peerId: a.peerId, userId: 'a', name: 'Ann', meta: {}, connectedAt: peer.connectedAt })
  t.equal(new Date(peer.connectedAt).toISOString(), peer.connectedAt, 'connectedAt is ISO-8601')
  const joined = await a.next()
  t.same(Object.keys(joined.peer).sort(), ['connectedAt', 'meta', 'peerId', 'userId'], 'name omitted when absent, never null')
})

t.test('a frame sent in the upgrade\'s own packet, or right at open, is processed', async t => {
  const { app, wsUrl } = await build(t)
  const early = encodeFrame(1, JSON.stringify({ type: 'ping', id: 'early' }))
  const raw = await rawWebSocket(t, portOf(app.server), '/v1/ws?project=p1', { authorization: `Bearer ${token({ sub: 'r' })}` }, early)
  const welcome = await raw.nextText()
  t.equal(welcome.type, 'welcome')
  t.same(await raw.nextText(), { type: 'pong', id: 'early' })
  const b = open(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  b.ws.on('open', () => b.send({ type: 'signal', to: welcome.peerId, data: 'hello', id: 'first' }))
  const bWelcome = await b.next()
  t.equal(bWelcome.type, 'welcome')
  t.same(await b.next(), { type: 'ack', id: 'first' })
  t.equal((await raw.nextText()).type, 'peer-joined')
  t.same(await raw.nextText(), { type: 'signal', from: bWelcome.peerId, data: 'hello' })
})

t.test('the 101 negotiates no extension', async t => {
  const { app } = await build(t)
  const raw = await rawWebSocket(t, portOf(app.server), '/v1/ws?project=p1', {
    authorization: `Bearer ${token()}`,
    'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits'
  })
  t.equal(raw.reply.status, 101)
  t.equal(raw.reply.headers['sec-websocket-extensions'], undefined)
})

t.test('#1 Origin allowlist: 403 origin_not_allowed, checked before the token', async t => {
  const { wsUrl } = await build(t, { registry: { allowedOrigins: ['https://ok.example'] } })
  let r = await refused(wsUrl('p1'), { token: token(), headers: { origin: 'https://evil.example' } })
  t.same([r.status, r.body.code], [403, 'origin_not_allowed'])
  r = await refused(wsUrl('p1'), { headers: { origin: 'https://evil.example' } })
  t.same([r.status, r.body.code], [403, 'origin_not_allowed'], 'row 1 before row 2')
  t.same(Object.keys(r.body).sort(), ['code', 'error', 'message', 'statusCode'])
  t.equal(r.body.statusCode, 403)
  await connect(t, wsUrl('p1'), { token: token(), headers: { origin: 'https://ok.example' } })
  await connect(t, wsUrl('p1'), { token: token() })
  t.pass('an allowed Origin and no Origin both pass')
  const open = await build(t)
  await connect(t, open.wsUrl('p1'), { token: token(), headers: { origin: 'https://anything.example' } })
  t.pass('without an allowlist any Origin passes')
})

t.test('#2 every bad token is 401 unauthorized', async t => {
  const { wsUrl } = await build(t)
  const cases: Array<[string, Record<string, string> | undefined, string | undefined]> = [
    ['no token', undefined, undefined],
    ['not a bearer', { authorization: 'Basic YTpi' }, undefined],
    ['garbage', undefined, 'not.a.jwt'],
    ['signed with another key', undefined, token({}, 'another-secret-of-sufficient-length')],
    ['expired beyond the tolerance', undefined, token({ exp: now() - 10 })],
    ['not yet valid', undefined, token({ nbf: now() + 60 })],
    ['no sub', undefined, hmacToken(secret, 'HS256', { projects: ['*'], exp: now() + 60 })],
    ['empty sub', undefined, token({ sub: '' })],
    ['no exp', undefined, hmacToken(secret, 'HS256', { sub: 'a', projects: ['*'] })],
    ['no projects', undefined, hmacToken(secret, 'HS256', { sub: 'a', exp: now() + 60 })],
    ['projects of the wrong type', undefined, hmacToken(secret, 'HS256', claims({ projects: 'p1' }))],
    ['name of the wrong type', undefined, token({ name: 5 })],
    ['alg none', undefined, unsignedToken()],
    ['HS384 with the right secret', undefined, hmacToken(secret, 'HS384')],
    ['HS512 with the right secret', undefined, hmacToken(secret, 'HS512')]
  ]
  for (const [name, headers, jwt] of cases) {
    const r = await refused(wsUrl('p1'), { headers, token: jwt })
    t.same([r.status, r.body.code], [401, 'unauthorized'], name)
  }
  const late = await refused(wsUrl('bad project!'), {})
  t.same([late.status, late.body.code], [401, 'unauthorized'], 'row 2 before row 3')
  await connect(t, wsUrl('p1'), { token: token({ exp: now() - 2 }) })
  t.pass('expired within the 5 s tolerance is still accepted')
  await connect(t, wsUrl('p1'), { token: token({ nbf: now() + 2 }) })
  t.pass('nbf honoured with the same tolerance')
})

t.test('the token travels in the header or ?access_token=, the header alone when both', async t => {
  const { wsUrl } = await build(t)
  await connect(t, wsUrl('p1'), { token: token(), query: true })
  t.pass('?access_token= works')
  const bad = await refused(wsUrl('p1', `&access_token=${token()}`), { headers: { authorization: 'Bearer nope' } })
  t.same([bad.status, bad.body.code], [401, 'unauthorized'], 'a bad header is not rescued by a good query')
  await connect(t, wsUrl('p1', '&access_token=nope'), { token: token() })
  t.pass('a good header wins over a bad query')
})

t.test('issuer and audience are checked when configured', async t => {
  const { wsUrl } = await build(t, { registry: { jwt: { secret, issuer: 'https://issuer.example', audience: 'registry' } } })
  const good = { iss: 'https://issuer.example', aud: 'registry' }
  await connect(t, wsUrl('p1'), { token: token(good) })
  for (const [name, extra] of [['wrong iss', { ...good, iss: 'x' }], ['wrong aud', { ...good, aud: 'x' }], ['no iss', { aud: 'registry' }], ['no aud', { iss: good.iss }]] as const) {
    const r = await refused(wsUrl('p1'), { token: token(extra) })
    t.same([r.status, r.body.code], [401, 'unauthorized'], name)
  }
})

for (const [alg, keys] of [['RS256', rsaKeys], ['ES256', ecKeys]] as const) {
  t.test(`${alg}: only a token signed by the configured key pair passes`, async t => {
    const pair = keys()
    const other = keys()
    const { wsUrl } = await build(t, { registry: { jwt: { publicKey: pair.publicKey } } })
    await connect(t, wsUrl('p1'), { token: token({}, pair.privateKey, alg) })
    const forged: Array<[string, string]> = [
      ['another key pair', token({}, other.privateKey, alg)],
      ['HS256 keyed with the PEM public key', hmacToken(pair.publicKey)],
      ['alg none', unsignedToken()],
      ['HS256 with any secret', token()]
    ]
    for (const [name, jwt] of forged) {
      const r = await refused(wsUrl('p1'), { token: jwt })
      t.same([r.status, r.body.code], [401, 'unauthorized'], name)
    }
  })
}

t.test('#3 a missing, empty or malformed project is 400 invalid_project, before the grant', async t => {
  const { url, wsUrl } = await build(t)
  const wsBase = url.replace('http', 'ws') + '/v1/ws'
  const narrow = token({ projects: ['p1'] })
  for (const [name, target] of [
    ['missing', wsBase],
    ['empty', `${wsBase}?project=`],
    ['bad characters', wsUrl('a b')],
    ['129 characters', wsUrl('x'.repeat(129))],
    ['repeated', `${wsBase}?project=p1&project=p2`]
  ]) {
    const r = await refused(target, { token: narrow })
    t.same([r.status, r.body.code], [400, 'invalid_project'], name)
  }
  await connect(t, wsUrl('x'.repeat(128)), { token: token() })
  t.pass('128 characters of the allowed set pass')
})

t.test('#4 a project not granted is 403 forbidden; the authorize hook replaces the claim', async t => {
  const { wsUrl } = await build(t)
  const r = await refused(wsUrl('p2'), { token: token({ projects: ['p1'] }) })
  t.same([r.status, r.body.code], [403, 'forbidden'])
  await connect(t, wsUrl('p1'), { token: token({ projects: ['p1'] }) })
  const hooked = await build(t, { registry: { authorize: async (user, projectId) => projectId === `own-${user.sub}` } })
  await connect(t, hooked.wsUrl('own-alice'), { token: token({ projects: [] }) })
  const h = await refused(hooked.wsUrl('p1'), { token: token({ projects: ['p1'] }) })
  t.same([h.status, h.body.code], [403, 'forbidden'], 'the hook, not the claim, decides')
})

t.test('#5 an unreachable presence store is 503 unavailable, after the grant', async t => {
  const store = switchableStore()
  const { wsUrl } = await build(t, { registry: { store, limits: { maxPeersPerProject: 1 } } })
  await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  store.presence.up = false
  const r = await refused(wsUrl('p1'), { token: token({ sub: 'b' }) })
  t.same([r.status, r.body.code], [503, 'unavailable'], 'row 5 before row 7')
  const f = await refused(wsUrl('p2'), { token: token({ projects: ['p1'] }) })
  t.same([f.status, f.body.code], [403, 'forbidden'], 'row 4 before row 5')
})

t.test('#6 a user over maxConnectionsPerUser is 429, before project_full', async t => {
  const { wsUrl } = await build(t, { registry: { limits: { maxConnectionsPerUser: 2, maxPeersPerProject: 3 } } })
  const first = await connect(t, wsUrl('p1'), { token: token({ sub: 'u' }) })
  await connect(t, wsUrl('p2'), { token: token({ sub: 'u' }) })
  let r = await refused(wsUrl('p3'), { token: token({ sub: 'u' }) })
  t.same([r.status, r.body.code], [429, 'too_many_connections'])
  await connect(t, wsUrl('p1'), { token: token({ sub: 'v' }) })
  await connect(t, wsUrl('p1'), { token: token({ sub: 'w' }) })
  r = await refused(wsUrl('p1'), { token: token({ sub: 'u' }) })
  t.same([r.status, r.body.code], [429, 'too_many_connections'], 'row 6 before row 7')
  await first.close()
  // The place frees within 1 s (§3): a bounded poll, since no event announces it.
  const deadline = Date.now() + 1000
  let again = await refused(wsUrl('p3'), { token: token({ sub: 'u' }) }).catch(() => undefined)
  while (again !== undefined && Date.now() < deadline) again = await refused(wsUrl('p3'), { token: token({ sub: 'u' }) }).catch(() => undefined)
  t.equal(again, undefined, 'a closed connection stops counting')
})

t.test('#7 a full project is 403 project_full', async t => {
  const { wsUrl } = await build(t, { registry: { limits: { maxPeersPerProject: 2 } } })
  await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  const r = await refused(wsUrl('p1'), { token: token({ sub: 'c' }) })
  t.same([r.status, r.body.code], [403, 'project_full'])
  await connect(t, wsUrl('p2'), { token: token({ sub: 'c' }) })
})

t.test('invalid RFC 6455 upgrades get a 4xx first and never become peers', async t => {
  const { app, url, wsUrl } = await build(t)
  const port = portOf(app.server)
  const watcher = await connect(t, wsUrl('p1'), { token: token({ sub: 'watcher' }) })
  const auth = `Authorization: Bearer ${token({ sub: 'intruder' })}`
  const upgrade = (first: string, lines: string[]): string =>
    [first, 'Host: 127.0.0.1', auth, ...lines].join('\r\n') + '\r\n\r\n'
  const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
  const cases: Array<[string, string, number, string | undefined]> = [
    ['POST', upgrade('POST /v1/ws?project=p1 HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', key, 'Content-Length: 0']), 404, undefined],
    ['no upgrade at all', upgrade('GET /v1/ws?project=p1 HTTP/1.1', ['Connection: close']), 426, 'upgrade_required'],
    ['Upgrade other than websocket', upgrade('GET /v1/ws?project=p1 HTTP/1.1', ['Connection: Upgrade', 'Upgrade: h2c', 'Sec-WebSocket-Version: 13', key]), 400, 'bad_request'],
    ['version 8', upgrade('GET /v1/ws?project=p1 HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 8', key]), 426, 'upgrade_required'],
    ['no version', upgrade('GET /v1/ws?project=p1 HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', key]), 426, 'upgrade_required'],
    ['no key', upgrade('GET /v1/ws?project=p1 HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13']), 400, 'bad_request'],
    ['a malformed key', upgrade('GET /v1/ws?project=p1 HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: short']), 400, 'bad_request'],
    ['a header block over 16 KiB', upgrade('GET /v1/ws?project=p1 HTTP/1.1', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', key, `X-Pad: ${'a'.repeat(17 * 1024)}`]), 431, undefined]
  ]
  for (const [name, request, status, code] of cases) {
    const r = await rawRequest(port, request)
    t.equal(r.status, status, `${name}: ${status}`)
    if (code !== undefined) t.equal(JSON.parse(r.body).code, code, `${name}: ${code}`)
    if (name === 'version 8') t.equal(r.headers['sec-websocket-version'], '13', 'names the version it speaks')
  }
  const upgradeTo = (path: string): string => upgrade(`GET ${path} HTTP/1.1`, ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', key])
  const plain = await rawRequest(port, upgradeTo('/healthz'), { awaitClose: true })
  t.same([plain.status, JSON.parse(plain.body).code], [400, 'bad_request'], 'an upgrade to a plain HTTP route is refused, not accepted')
  const unknown = await rawRequest(port, upgradeTo('/nowhere'), { awaitClose: true })
  t.equal(unknown.status, 404, 'an upgrade to an unknown path is 404, and its socket is closed')
  watcher.send({ type: 'ping', id: 'after' })
  t.same(await watcher.next(), { type: 'pong', id: 'after' }, 'no presence event came before the pong')
  const listed = await fetch(`${url}/v1/projects/p1/peers`, { headers: { authorization: `Bearer ${token()}` } })
  t.same((await listed.json()).peers.map((p: { userId: string }) => p.userId), ['watcher'], 'no REST entry')
})

t.test('a client gone while its upgrade is admitted never stays listed', async t => {
  let granting = 0
  const { app, url } = await build(t, {
    // Admission waits here, as it would on a slow authorize hook or a remote presence store.
    registry: { authorize: async () => { granting++; await new Promise(resolve => setTimeout(resolve, 150)); return true } }
  })
  const socket = net.connect(portOf(app.server), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(`GET /v1/ws?project=p1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${token({ sub: 'gone' })}\r\n\r\n`)
  await until(() => granting === 1, 5000, 'admission to start')
  socket.resetAndDestroy()
  await new Promise(resolve => setTimeout(resolve, 400))
  const listed = await fetch(`${url}/v1/projects/p1/peers`, { headers: { authorization: `Bearer ${token()}` } })
  t.same((await listed.json()).peers, [], 'not listed once its admission ended')
})
