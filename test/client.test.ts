// The SDK against the real registry, in Node (it loads `ws` itself).
import t from 'tap'
import { WebSocket } from 'ws'
import { connect, RegistryError } from '../client/index.ts'
import { build, token } from './helpers/app.ts'
import { next, open } from './helpers/client.ts'

t.test('connects, keeps the peer list and reports presence events', async t => {
  const { url } = await build(t)
  const alice = await open(t, url, 'p1', { sub: 'alice' })
  t.equal(alice.state, 'open')
  t.equal(alice.projectId, 'p1')
  t.ok(alice.peerId.length > 10)
  t.equal(alice.peers.size, 0)
  t.ok(alice.heartbeatMs > 0)

  const joined = next(alice, 'peer-joined')
  const bob = await open(t, url, 'p1', { sub: 'bob' })
  t.match(await joined, { peerId: bob.peerId, userId: 'bob', meta: {} })
  t.same([...alice.peers.keys()], [bob.peerId])
  t.same([...bob.peers.keys()], [alice.peerId], 'the welcome list excludes the newcomer itself')

  const seenByAlice = next(alice, 'peer-updated')
  const seenByBob = next(bob, 'peer-updated')
  await bob.setMeta({ status: 'busy' })
  t.match(await seenByAlice, { peerId: bob.peerId, meta: { status: 'busy' } })
  t.match(await seenByBob, { peerId: bob.peerId }, 'a peer hears its own update')
  t.same(alice.peers.get(bob.peerId)?.meta, { status: 'busy' })
  t.equal(bob.peers.has(bob.peerId), false, 'its own entry is not one of the others')

  const left = next(alice, 'peer-left')
  await bob.close()
  t.match(await left, { peerId: bob.peerId, reason: 'closed', peer: { userId: 'bob', meta: { status: 'busy' } } })
  t.equal(alice.peers.size, 0)
  t.equal(bob.state, 'closed')
})

t.test('signal and broadcast resolve on ack and reach the other peers', async t => {
  const { url } = await build(t)
  const a = await open(t, url, 'p1', { sub: 'a' })
  const b = await open(t, url, 'p1', { sub: 'b' })
  const c = await open(t, url, 'p1', { sub: 'c' })

  const signalled = next(b, 'signal')
  await a.signal(b.peerId, { sdp: 'offer' })
  t.same(await signalled, { from: a.peerId, data: { sdp: 'offer' } })

  const atB = next(b, 'broadcast')
  const atC = next(c, 'broadcast')
  let echoed = false
  a.on('broadcast', () => { echoed = true })
  await a.broadcast(['hello', null])
  t.same(await atB, { from: a.peerId, data: ['hello', null] })
  t.same(await atC, { from: a.peerId, data: ['hello', null] })
  t.ok(await a.ping() >= 0, 'a round trip after the broadcast')
  t.equal(echoed, false, 'a peer never receives its own broadcast')
})

t.test('refused frames reject with the contract\'s code; the connection stays', async t => {
  const { url } = await build(t, { registry: { limits: { rateLimitPerSec: 1, rateLimitBurst: 3, maxFrameBytes: 1024, maxMetaBytes: 64 } } })
  const a = await open(t, url, 'p1')

  const unknown = await a.signal('no-such-peer', 1).catch((e: unknown) => e)
  t.ok(unknown instanceof RegistryError)
  t.match(unknown, { code: 'peer_not_found' })

  const big = await a.setMeta({ text: 'x'.repeat(100) }).catch((e: unknown) => e)
  t.match(big, { code: 'invalid_frame' }, 'meta over maxMetaBytes')

  const huge = await a.broadcast('y'.repeat(2000)).catch((e: unknown) => e)
  t.match(huge, { code: 'frame_too_big' }, 'refused locally instead of earning close 1009')

  await a.broadcast('z')
  const limited = await a.broadcast('z').catch((e: unknown) => e)
  t.match(limited, { code: 'rate_limited' }, 'the burst of 3 is spent')
  t.equal(a.state, 'open')
})

t.test('an explicit WebSocket class (here ws) is used as given, token in the query', async t => {
  const { url, logs } = await build(t, { captureLogs: true })
  const client = await open(t, url, 'p1', { WebSocket })
  t.equal(client.state, 'open')
  const connected = logs.find(l => l.msg === 'peer connected')
  t.ok(connected !== undefined)
  t.notMatch(JSON.stringify(logs), /access_token=ey/, 'the server redacted the query token')
})

t.test('a refused upgrade rejects connect() with its code and is not retried', async t => {
  const { url } = await build(t)
  const bad = await connect({ url, project: 'p1', token: token({}, 'another-secret-long-enough-for-hs256') }).catch((e: unknown) => e)
  t.match(bad, { code: 'unauthorized', status: 401, retry: 'never' })
  const denied = await connect({ url, project: 'p2', token: token({ projects: ['p1'] }) }).catch((e: unknown) => e)
  t.match(denied, { code: 'forbidden', status: 403 })
  const invalid = await connect({ url, project: 'bad project!', token: token() }).catch((e: unknown) => e)
  t.match(invalid, { code: 'invalid_project', status: 400 })
})

t.test('a server that never answers the upgrade: connect() times out, nothing leaks', async t => {
  const { createServer } = await import('node:net')
  const sockets = new Set<import('node:net').Socket>()
  const silent = createServer(socket => { sockets.add(socket) })
  silent.listen(0, '127.0.0.1')
  await new Promise(resolve => silent.once('listening', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
  const address = silent.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const err = await connect({ url: `http://127.0.0.1:${port}`, project: 'p1', token: token(), connectTimeoutMs: 100 }).catch((e: unknown) => e)
  t.match(err, { code: 'timeout', retry: 'backoff' })
  // The aborted handshake made `ws` emit an error: it must not crash the process.
  await new Promise(resolve => setImmediate(resolve))
})
