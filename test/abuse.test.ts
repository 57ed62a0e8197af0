// Protocol abuse: endless fragments, header floods, prototype-polluting payloads.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { build, secret, token } from './helpers/app.ts'
import { connect } from './helpers/peer.ts'
import { encodeFrame, portOf, rawRequest, rawWebSocket } from './helpers/raw.ts'
import { hmacToken, claims } from './helpers/tokens.ts'

for (const [kind, payload] of [['empty', ''], ['tiny', ' ']] as const) {
  t.test(`a text message split into 20,000 ${kind} fragments that never ends is closed, the heap flat`, async t => {
    const { app, wsUrl } = await build(t)
    const watcher = await connect(t, wsUrl('p1'), { token: token({ sub: 'watcher' }) })
    const raw = await rawWebSocket(t, portOf(app.server), '/v1/ws?project=p1', { authorization: `Bearer ${token({ sub: 'abuser' })}` })
    await raw.nextText()
    await watcher.nextOf('peer-joined')
    const heapBefore = process.memoryUsage().heapUsed
    const fragment = encodeFrame(0, payload, { fin: false })
    raw.write(Buffer.concat([encodeFrame(1, '{', { fin: false }), ...Array.from({ length: 20000 }, () => fragment)]))
    t.equal(await raw.closed, 1008, 'closed 1008 past the fragment limit')
    t.equal((await watcher.nextOf('peer-left')).reason, 'kicked')
    t.ok(process.memoryUsage().heapUsed - heapBefore < 16 * 1024 * 1024, 'the heap did not grow with the fragments')
    watcher.send({ type: 'ping', id: 'ok' })
    t.same(await watcher.next(), { type: 'pong', id: 'ok' }, 'the server carries on')
  })
}

t.test('an upgrade with thousands of headers does not crash the process', async t => {
  const { app, wsUrl } = await build(t)
  const port = portOf(app.server)
  const many = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x${i}`, '1']))
  const ok = await rawWebSocket(t, port, '/v1/ws?project=p1', { authorization: `Bearer ${token({ sub: 'a' })}`, ...many(1500) })
  t.equal((await ok.nextText()).type, 'welcome', '1,500 small headers under 16 KiB: an ordinary peer')
  const head = ['GET /v1/ws?project=p1 HTTP/1.1', 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `Authorization: Bearer ${token({ sub: 'b' })}`]
  const flood = await rawRequest(port, [...head, ...Array.from({ length: 5000 }, (_, i) => `x${i}: 1`)].join('\r\n') + '\r\n\r\n')
  t.equal(flood.status, 431, '5,000 headers: 431, before any check')
  const dup = await rawRequest(port, [...head, ...Array.from({ length: 1000 }, () => `Authorization: Bearer ${token({ sub: 'c' })}`)].join('\r\n') + '\r\n\r\n')
  t.equal(dup.status, 431, 'a thousand Authorization headers: 431')
  const after = await connect(t, wsUrl('p1'), { token: token({ sub: 'd' }) })
  t.equal(after.welcome.type, 'welcome', 'the server still admits peers')
})

t.test('__proto__ and constructor payloads pollute nothing', async t => {
  const before = Object.getOwnPropertyNames(Object.prototype).sort()
  const { url, wsUrl } = await build(t)
  const evil = hmacToken(secret, 'HS256', JSON.parse(`{"sub":"__proto__","projects":["*"],"exp":${Number(claims().exp)},"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}`))
  const a = await connect(t, wsUrl('__proto__'), { token: evil })
  const b = await connect(t, wsUrl('__proto__'), { token: token({ sub: 'constructor' }) })
  t.equal((await a.next()).type, 'peer-joined')
  const hostile = [
    '{"type":"meta","meta":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}},"id":"m"}',
    '{"type":"signal","to":"__proto__","data":{"__proto__":{"polluted":1}},"id":"s1"}',
    '{"type":"signal","to":"constructor","data":1,"id":"s2"}',
    '{"type":"signal","to":"hasOwnProperty","data":1,"id":"s3"}',
    '{"type":"__proto__","id":"t1"}',
    '{"type":"toString","id":"t2"}',
    '{"__proto__":{"type":"ping"},"id":"t3"}',
    '{"type":"broadcast","data":{"__proto__":{"polluted":1}},"id":"b"}'
  ]
  for (const text of hostile) b.send(text)
  const answers: Array<Record<string, unknown>> = []
  while (answers.length < hostile.length) {
    const f = await b.next()
    if (f.type === 'ack' || f.type === 'error') answers.push(f)
  }
  t.same(answers.map(f => [f.type, f.id, f.code]), [
    ['ack', 'm', undefined], ['error', 's1', 'peer_not_found'], ['error', 's2', 'peer_not_found'], ['error', 's3', 'peer_not_found'],
    ['error', 't1', 'invalid_frame'], ['error', 't2', 'invalid_frame'], ['error', 't3', 'invalid_frame'], ['ack', 'b', undefined]
  ])
  const updated = await a.nextOf('peer-updated')
  t.same(Object.keys(updated.peer.meta).sort(), ['__proto__', 'constructor'], 'the keys travel as plain data')
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), before, 'Object.prototype unchanged')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no object inherits anything')
  const listed = await fetch(`${url}/v1/projects/__proto__/peers`, { headers: { authorization: `Bearer ${token()}` } })
  t.same((await listed.json()).peers.map((p: { userId: string }) => p.userId).sort(), ['__proto__', 'constructor'])
  const other = await connect(t, wsUrl('constructor'), { token: token({ sub: 'x' }) })
  t.same(other.welcome.peers, [], 'the project named constructor is an ordinary, empty project')
})

t.test('the lockfile resolves ws and fast-jwt past their known advisories', async t => {
  const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as { packages: Record<string, { version?: string }> }
  const atLeast = (version: string, min: string): boolean => {
    const [a, b] = [version, min].map(v => v.split('.').map(Number))
    for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i]
    return true
  }
  for (const [name, min] of [['ws', '8.21.1'], ['fast-jwt', '6.3.1']]) {
    const versions = Object.entries(lock.packages).filter(([path]) => path.endsWith(`node_modules/${name}`)).map(([, p]) => p.version ?? '0.0.0')
    t.ok(versions.length > 0, `${name} is in the lockfile`)
    for (const v of versions) t.ok(atLeast(v, min), `${name} ${v} >= ${min}`)
  }
})
