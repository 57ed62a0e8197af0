// Presence events may wait a few ms to share a write with others (routes/peer-socket.ts), but
// never change order: a frame that cannot wait takes them along, in the order they were sent.
import t from 'tap'
import WebSocket from 'ws'
import { build, token } from './helpers/app.ts'
import { connect } from './helpers/peer.ts'

t.test('a signal from a peer that just joined arrives after its peer-joined', async t => {
  const { wsUrl } = await build(t)
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  for (let i = 0; i < 20; i++) {
    const b = await connect(t, wsUrl('p1'), { token: token({ sub: `b${i}` }) })
    // Sent at once: the join's peer-joined is still held for batching when the signal comes.
    b.send({ type: 'signal', to: a.peerId, data: i })
    const first = await a.next()
    const second = await a.next()
    t.match(first, { type: 'peer-joined', peer: { peerId: b.peerId } }, `join ${i}: peer-joined first`)
    t.match(second, { type: 'signal', from: b.peerId, data: i }, `join ${i}: then the signal`)
    await b.close()
    t.match(await a.next(), { type: 'peer-left', peerId: b.peerId })
  }
})

t.test('a burst of joins reaches a watcher in order, in fewer writes than events', async t => {
  const { wsUrl } = await build(t)
  const watcher = await connect(t, wsUrl('team'), { token: token({ sub: 'w' }) })
  // Count the TCP reads the watcher's client makes: each server write arrives as one or more.
  let reads = 0
  const raw = (watcher.ws as WebSocket & { _socket: { on: (e: string, f: () => void) => void } })._socket
  raw.on('data', () => { reads++ })
  const joins = 30
  const peers = await Promise.all(Array.from({ length: joins }, async (_, i) => await connect(t, wsUrl('team'), { token: token({ sub: `m${i}` }) })))
  const revs: number[] = []
  const seen = new Set<string>()
  for (let i = 0; i < joins; i++) {
    const f = await watcher.next()
    t.equal(f.type, 'peer-joined')
    revs.push(f.rev)
    seen.add(f.peer.peerId)
  }
  t.same(revs, [...revs].sort((x, y) => x - y), 'revs in increasing order')
  t.same(seen, new Set(peers.map(p => p.peerId)), 'every joiner announced once')
  t.ok(reads < joins, `${joins} peer-joined events arrived in ${reads} reads`)
})
