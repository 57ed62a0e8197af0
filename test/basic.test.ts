import t from 'tap'
import { build, token } from './helpers/app.ts'
import { connect, refused } from './helpers/peer.ts'

t.test('two peers meet, signal and leave', async t => {
  const { wsUrl } = await build(t)
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  t.match(a.welcome, { type: 'welcome', peers: [], rev: 1 })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  t.equal(b.welcome.peers.length, 1)
  t.match(await a.next(), { type: 'peer-joined', peer: { peerId: b.peerId, userId: 'b', meta: {} }, rev: 2 })
  b.send({ type: 'signal', to: a.peerId, data: { sdp: 'x' }, id: 's1' })
  t.same(await a.next(), { type: 'signal', from: b.peerId, data: { sdp: 'x' } })
  t.same(await b.next(), { type: 'ack', id: 's1' })
  await b.close()
  t.same(await a.next(), { type: 'peer-left', peerId: b.peerId, reason: 'closed', rev: 3 })
})

t.test('a token-less upgrade is refused with 401', async t => {
  const { wsUrl } = await build(t)
  const r = await refused(wsUrl('p1'))
  t.equal(r.status, 401)
  t.equal(r.body.code, 'unauthorized')
})

t.test('frames of every WebSocket length encoding arrive whole, in order, with multi-byte text', async t => {
  // Our sockets frame text themselves (routes/peer-socket.ts): 7-bit, 16-bit and 64-bit lengths,
  // lengths counted in bytes, not characters; one signal and one broadcast of each.
  const { wsUrl } = await build(t, { registry: { limits: { maxFrameBytes: 200_000 } } })
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  await a.nextOf('peer-joined')
  const sizes = [0, 60, 125, 126, 1000, 65535, 65536, 100_000]
  const data = sizes.map(n => 'é€'.repeat(Math.ceil(n / 5)).slice(0, Math.ceil(n / 2)))
  for (const d of data) {
    b.send({ type: 'signal', to: a.peerId, data: d })
    b.send({ type: 'broadcast', data: d })
  }
  for (const d of data) {
    t.same(await a.next(), { type: 'signal', from: b.peerId, data: d }, `signal of ${Buffer.byteLength(d)} bytes`)
    t.same(await a.next(), { type: 'broadcast', from: b.peerId, data: d }, `broadcast of ${Buffer.byteLength(d)} bytes`)
  }
})
