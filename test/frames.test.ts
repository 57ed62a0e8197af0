// PROTOCOL.md §3: every client frame, every error code, isolation, ordering and rev.
import t, { type Test } from 'tap'
import { build, token } from './helpers/app.ts'
import { connect, type Frame, type Peer } from './helpers/peer.ts'
import { switchableStore } from './helpers/stores.ts'

/** An `error` frame with exactly the contract's fields; `id` only when echoed. */
function isError (t: Test, f: Frame, code: string, id?: string, name = `error ${code}`): void {
  t.same(Object.keys(f).sort(), id === undefined ? ['code', 'message', 'type'] : ['code', 'id', 'message', 'type'], `${name}: exact fields`)
  t.match(f, { type: 'error', code, message: String }, name)
  if (id !== undefined) t.equal(f.id, id, `${name}: id echoed`)
}

/** Proves nothing else was queued for `p`: a ping's pong is its next frame. */
async function nothingElse (t: Test, p: Peer, name: string): Promise<void> {
  const id = `sentinel-${Math.random().toString(36).slice(2)}`
  p.send({ type: 'ping', id })
  t.same(await p.next(), { type: 'pong', id }, name)
}

async function pair (t: Test, limits = {}): Promise<{ a: Peer, b: Peer, wsUrl: (p: string) => string }> {
  const { wsUrl } = await build(t, { registry: { limits } })
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  await a.nextOf('peer-joined')
  return { a, b, wsUrl }
}

t.test('signal: relayed with a server-set from; ack only with an id', async t => {
  const { a, b } = await pair(t)
  for (const data of [{ sdp: 'offer', n: [1, 2] }, null, 'text', 0, false, [1, 'x']]) {
    b.send({ type: 'signal', to: a.peerId, data, id: 'sig' })
    t.same(await a.next(), { type: 'signal', from: b.peerId, data }, `data ${JSON.stringify(data)} relayed as is`)
    t.same(await b.next(), { type: 'ack', id: 'sig' })
  }
  b.send({ type: 'signal', to: a.peerId, data: 1 })
  t.same(await a.next(), { type: 'signal', from: b.peerId, data: 1 })
  await nothingElse(t, b, 'no ack without an id')
  b.send({ type: 'signal', to: b.peerId, data: 'self' })
  t.same(await b.next(), { type: 'signal', from: b.peerId, data: 'self' }, 'a peer may signal itself')
})

t.test('signal: an unknown peer is peer_not_found, the id echoed when given', async t => {
  const { b } = await pair(t)
  b.send({ type: 'signal', to: 'nobody', data: 1, id: 'q' })
  isError(t, await b.next(), 'peer_not_found', 'q')
  b.send({ type: 'signal', to: 'nobody', data: 1 })
  isError(t, await b.next(), 'peer_not_found', undefined, 'without an id')
})

t.test('from cannot be forged, and signal fields are checked', async t => {
  const { a, b } = await pair(t)
  const invalid: Array<[string, unknown]> = [
    ['a from field', { type: 'signal', to: a.peerId, data: 1, from: a.peerId, id: 'f1' }],
    ['a broadcast with from', { type: 'broadcast', data: 1, from: a.peerId, id: 'f1' }],
    ['no data', { type: 'signal', to: a.peerId, id: 'f1' }],
    ['no to', { type: 'signal', data: 1, id: 'f1' }],
    ['an empty to', { type: 'signal', to: '', data: 1, id: 'f1' }],
    ['a to of 129 characters', { type: 'signal', to: 'x'.repeat(129), data: 1, id: 'f1' }],
    ['a numeric to', { type: 'signal', to: 5, data: 1, id: 'f1' }]
  ]
  for (const [name, frame] of invalid) {
    b.send(frame)
    isError(t, await b.next(), 'invalid_frame', 'f1', name)
  }
  b.send({ type: 'signal', to: 'x'.repeat(128), data: 1, id: 'f2' })
  isError(t, await b.next(), 'peer_not_found', 'f2', 'a to of 128 characters is well-formed')
  await nothingElse(t, a, 'nothing forged reached the target')
})

t.test('broadcast: every other peer, never the sender', async t => {
  const { a, b, wsUrl } = await pair(t)
  const c = await connect(t, wsUrl('p1'), { token: token({ sub: 'c' }) })
  await a.nextOf('peer-joined')
  await b.nextOf('peer-joined')
  c.send({ type: 'broadcast', data: { hello: 'all' }, id: 'b1' })
  t.same(await a.next(), { type: 'broadcast', from: c.peerId, data: { hello: 'all' } })
  t.same(await b.next(), { type: 'broadcast', from: c.peerId, data: { hello: 'all' } })
  t.same(await c.next(), { type: 'ack', id: 'b1' })
  await nothingElse(t, c, 'the sender does not hear its own broadcast')
  c.send({ type: 'broadcast', data: null })
  t.same(await a.next(), { type: 'broadcast', from: c.peerId, data: null })
  await nothingElse(t, c, 'no ack without an id')
  c.send({ type: 'broadcast', id: 'b2' })
  isError(t, await c.next(), 'invalid_frame', 'b2', 'data is required')
})

t.test('peers: the project\'s peers, the requester included, with the rev', async t => {
  const { a, b } = await pair(t)
  a.send({ type: 'peers', id: 'l1' })
  const listed = await a.next()
  t.same(Object.keys(listed).sort(), ['id', 'peers', 'rev', 'type'])
  t.match(listed, { type: 'peers', id: 'l1', rev: 2 })
  t.same(listed.peers.map((p: Frame) => p.peerId).sort(), [a.peerId, b.peerId].sort())
  a.send({ type: 'peers' })
  const bare = await a.next()
  t.same(Object.keys(bare).sort(), ['peers', 'rev', 'type'], 'no id when none was given')
  a.send({ type: 'peers', id: 'l2', project: 'p2' })
  isError(t, await a.next(), 'invalid_frame', 'l2', 'extra fields are invalid')
})

t.test('meta: replaced, announced to every peer including itself, bounded at 1,024 bytes', async t => {
  const { a, b, wsUrl } = await pair(t)
  a.send({ type: 'meta', meta: { status: 'busy' }, id: 'm1' })
  const own = await a.next()
  t.same(own, { type: 'peer-updated', peer: { ...own.peer, meta: { status: 'busy' } }, rev: 3 })
  t.equal(own.peer.peerId, a.peerId)
  t.same(await a.next(), { type: 'ack', id: 'm1' })
  t.same(await b.next(), own, 'the other peer gets the same event')
  a.send({ type: 'meta', meta: { x: 1 } })
  t.same((await a.next()).peer.meta, { x: 1 }, 'replaced, not merged')
  await nothingElse(t, a, 'no ack without an id')
  t.same((await b.next()).peer.meta, { x: 1 })
  const exact = { k: 'v'.repeat(1024 - JSON.stringify({ k: '' }).length) }
  t.equal(Buffer.byteLength(JSON.stringify(exact)), 1024)
  a.send({ type: 'meta', meta: exact, id: 'm2' })
  t.same((await a.nextOf('ack')).id, 'm2', '1,024 bytes pass')
  a.skipped.length = 0
  const multi = { k: 'é'.repeat(512) }
  t.ok(Buffer.byteLength(JSON.stringify(multi)) > 1024, 'counted in UTF-8 bytes, not characters')
  for (const [name, meta] of [['1,025 bytes', { k: 'v'.repeat(1017) }], ['multi-byte', multi], ['an array', [1]], ['null', null], ['a string', 's']] as const) {
    a.send({ type: 'meta', meta, id: 'm3' })
    isError(t, await a.next(), 'invalid_frame', 'm3', name)
  }
  const c = await connect(t, wsUrl('p1'), { token: token({ sub: 'c' }) })
  t.same(c.welcome.peers.find((p: Frame) => p.peerId === a.peerId).meta, exact, 'a newcomer sees the current meta')
})

t.test('ping: pong, with the id when given', async t => {
  const { a } = await pair(t)
  a.send({ type: 'ping', id: 'p' })
  t.same(await a.next(), { type: 'pong', id: 'p' })
  a.send({ type: 'ping' })
  t.same(await a.next(), { type: 'pong' })
  a.send({ type: 'ping', id: 'x'.repeat(64) })
  t.same(await a.next(), { type: 'pong', id: 'x'.repeat(64) }, 'an id of 64 characters')
})

t.test('invalid frames: invalid_frame, the id echoed only when it is valid', async t => {
  const { a } = await pair(t)
  const cases: Array<[string, string, string | undefined]> = [
    ['not JSON', '{"type":', undefined],
    ['an array', '[{"type":"ping"}]', undefined],
    ['a number', '42', undefined],
    ['null', 'null', undefined],
    ['a string', '"ping"', undefined],
    ['no type', '{"id":"i1"}', 'i1'],
    ['an unknown type', '{"type":"hello","id":"i2"}', 'i2'],
    ['a prototype key as type', '{"type":"constructor","id":"i3"}', 'i3'],
    ['an id of 65 characters', JSON.stringify({ type: 'ping', id: 'x'.repeat(65) }), undefined],
    ['an empty id', '{"type":"ping","id":""}', undefined],
    ['a numeric id', '{"type":"ping","id":7}', undefined],
    ['an extra field', '{"type":"ping","id":"i4","extra":1}', 'i4'],
    ['a wrong type for type', '{"type":1,"id":"i5"}', 'i5'],
    ['an empty auth token', '{"type":"auth","token":"","id":"i6"}', 'i6']
  ]
  for (const [name, text, id] of cases) {
    a.send(text)
    isError(t, await a.next(), 'invalid_frame', id, name)
    // A valid frame resets the run of invalid ones, so this test never reaches the 1008 close.
    await nothingElse(t, a, `${name}: the connection stays`)
  }
})

t.test('unavailable: what needs the cluster is refused, local delivery goes on', async t => {
  const store = switchableStore()
  const { wsUrl } = await build(t, { registry: { store } })
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  await a.nextOf('peer-joined')
  store.presence.up = false
  store.bus.up = false
  b.send({ type: 'signal', to: a.peerId, data: 'local', id: 'u1' })
  t.same(await a.next(), { type: 'signal', from: b.peerId, data: 'local' }, 'a signal to a peer on this node is delivered')
  t.same(await b.next(), { type: 'ack', id: 'u1' })
  b.send({ type: 'broadcast', data: 'local', id: 'u2' })
  t.same(await a.next(), { type: 'broadcast', from: b.peerId, data: 'local' }, 'a broadcast reaches this node\'s peers')
  isError(t, await b.next(), 'unavailable', 'u2', 'broadcast answered unavailable instead of ack')
  b.send({ type: 'peers', id: 'u3' })
  isError(t, await b.next(), 'unavailable', 'u3', 'peers')
  b.send({ type: 'meta', meta: { a: 1 }, id: 'u4' })
  isError(t, await b.next(), 'unavailable', 'u4', 'meta')
  await nothingElse(t, a, 'no peer-updated went out')
})

t.test('internal: a failure inside the registry is answered, the connection stays', async t => {
  const store = switchableStore()
  const { wsUrl } = await build(t, { registry: { store } })
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  store.presence.failUpdates = true
  a.send({ type: 'meta', meta: { a: 1 }, id: 'i1' })
  isError(t, await a.next(), 'internal', 'i1')
  await nothingElse(t, a, 'the connection stays')
})

t.test('projects are isolated: no signal, broadcast or presence crosses them', async t => {
  const { a, b, wsUrl } = await pair(t)
  const c = await connect(t, wsUrl('p2'), { token: token({ sub: 'c' }) })
  t.same(c.welcome.peers, [], 'p2 lists none of p1')
  c.send({ type: 'signal', to: a.peerId, data: 'sneak', id: 'x1' })
  isError(t, await c.next(), 'peer_not_found', 'x1', 'a peer of another project is not found')
  c.send({ type: 'broadcast', data: 'sneak' })
  c.send({ type: 'meta', meta: { sneak: true } })
  await c.nextOf('peer-updated')
  a.send({ type: 'broadcast', data: 'p1 only' })
  t.same(await b.next(), { type: 'broadcast', from: a.peerId, data: 'p1 only' })
  await nothingElse(t, a, 'p1 heard nothing of p2')
  await nothingElse(t, b, 'p1 heard nothing of p2')
  await nothingElse(t, c, 'p2 heard nothing of p1')
  a.send({ type: 'peers', id: 'l' })
  t.equal((await a.next()).peers.length, 2)
})

t.test('1,000 signals from A to B arrive complete and in order', async t => {
  const { a, b } = await pair(t, { rateLimitPerSec: 100000, rateLimitBurst: 100000 })
  const n = 1000
  for (let i = 0; i < n; i++) b.send({ type: 'signal', to: a.peerId, data: { i }, id: `s${i}` })
  const got: number[] = []
  for (let i = 0; i < n; i++) {
    const f = await a.next()
    if (f.type === 'signal' && f.from === b.peerId) got.push(f.data.i)
  }
  t.same(got, Array.from({ length: n }, (_, i) => i))
  const acks: string[] = []
  for (let i = 0; i < n; i++) acks.push((await b.next()).id)
  t.same(acks, Array.from({ length: n }, (_, i) => `s${i}`), 'acks in order too')
})

t.test('presence events reach every peer in rev order, +1 each, after its welcome', async t => {
  const { wsUrl } = await build(t, { registry: { limits: { rateLimitPerSec: 10000, rateLimitBurst: 10000 } } })
  const peers: Peer[] = []
  for (let i = 0; i < 4; i++) peers.push(await connect(t, wsUrl('p1'), { token: token({ sub: `u${i}` }) }))
  const updates = 25
  for (let k = 0; k < updates; k++) for (const p of peers) p.send({ type: 'meta', meta: { k }, id: `m${k}` })
  const last = 4 + updates * peers.length
  for (const [i, p] of peers.entries()) {
    const revs: number[] = []
    while (revs.at(-1) !== last) {
      const f = await p.next()
      if (typeof f.rev === 'number') revs.push(f.rev)
    }
    const from = p.welcome.rev + 1
    t.same(revs, Array.from({ length: last - from + 1 }, (_, j) => from + j), `peer ${i}: revs ${from}..${last} with no gap`)
  }
  await peers[3].close()
  for (const p of peers.slice(0, 3)) t.same(await p.nextOf('peer-left'), { type: 'peer-left', peerId: peers[3].peerId, reason: 'closed', rev: last + 1 })
})

t.test('frames sent before closing are processed before the peer-left', async t => {
  const { a, b } = await pair(t)
  b.send({ type: 'meta', meta: { bye: true } })
  b.send({ type: 'signal', to: a.peerId, data: 'last words' })
  b.send({ type: 'broadcast', data: 'goodbye' })
  b.ws.close(1000)
  t.match(await a.next(), { type: 'peer-updated', peer: { peerId: b.peerId, meta: { bye: true } }, rev: 3 })
  t.same(await a.next(), { type: 'signal', from: b.peerId, data: 'last words' })
  t.same(await a.next(), { type: 'broadcast', from: b.peerId, data: 'goodbye' })
  t.same(await a.next(), { type: 'peer-left', peerId: b.peerId, reason: 'closed', rev: 4 })
})
