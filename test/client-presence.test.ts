// The SDK's peer list against PROTOCOL.md §3 "Delivery": apply in rev order, ignore what the
// list already reflects, and on a gap (a rev restarting lower included) ask for the whole list.
import t from 'tap'
import { PeerList } from '../client/presence.ts'
import type { Peer } from '../client/protocol.ts'

const peer = (peerId: string, meta: Record<string, unknown> = {}): Peer => ({ peerId, userId: peerId, meta, connectedAt: '2026-01-01T00:00:00.000Z' })

t.test('events in rev order are applied', async t => {
  const list = new PeerList()
  list.replace([peer('a')], 1, 'me')
  t.same(list.receive({ type: 'peer-joined', peer: peer('b'), rev: 2 }), { changes: [{ kind: 'joined', peer: peer('b') }], gap: false })
  t.same(list.receive({ type: 'peer-updated', peer: peer('b', { x: 1 }), rev: 3 }).changes, [{ kind: 'updated', peer: peer('b', { x: 1 }) }])
  t.same(list.receive({ type: 'peer-left', peerId: 'a', reason: 'timeout', rev: 4 }).changes, [{ kind: 'left', peerId: 'a', reason: 'timeout', peer: peer('a') }])
  t.same([...list.peers.keys()], ['b'])
  t.equal(list.rev, 4)
})

t.test('its own update is reported but never listed', async t => {
  const list = new PeerList()
  list.replace([peer('me'), peer('a')], 5, 'me')
  t.same([...list.peers.keys()], ['a'])
  t.same(list.receive({ type: 'peer-updated', peer: peer('me', { y: 1 }), rev: 6 }).changes, [{ kind: 'updated', peer: peer('me', { y: 1 }) }])
  t.same([...list.peers.keys()], ['a'])
})

t.test('a skipped rev is a gap; events meanwhile are held and replayed above the reply', async t => {
  const list = new PeerList()
  list.replace([], 1, 'me')
  t.same(list.receive({ type: 'peer-joined', peer: peer('c'), rev: 3 }), { changes: [], gap: true })
  t.ok(list.resyncing)
  t.same(list.receive({ type: 'peer-joined', peer: peer('d'), rev: 4 }), { changes: [], gap: false }, 'held')
  t.same(list.receive({ type: 'peer-joined', peer: peer('e'), rev: 5 }), { changes: [], gap: false }, 'held')
  // The reply reflects rev 4: c and d are in it, e's join is replayed after it.
  const got = list.replace([peer('b'), peer('c'), peer('d'), peer('me')], 4)
  t.same(got.changes.map(c => c.kind === 'left' ? `-${c.peerId}` : `${c.kind}:${c.peer.peerId}`), ['joined:b', 'joined:c', 'joined:d', 'joined:e'])
  t.equal(got.gap, false)
  t.equal(list.rev, 5)
  t.notOk(list.resyncing)
})

t.test('a rev at or below the last one seen means the cluster restarted it: a gap', async t => {
  const list = new PeerList()
  list.replace([peer('a')], 40, 'me')
  t.same(list.receive({ type: 'peer-joined', peer: peer('a'), rev: 2 }), { changes: [], gap: true })
  const got = list.replace([peer('a'), peer('z')], 3)
  t.same(got.changes, [{ kind: 'joined', peer: peer('z') }])
  t.equal(list.rev, 3)
  t.same(list.receive({ type: 'peer-left', peerId: 'z', reason: 'closed', rev: 4 }).changes.length, 1, 'the restarted sequence goes on')
})

t.test('a fresh list reports what changed, including peers that vanished', async t => {
  const list = new PeerList()
  list.replace([peer('a'), peer('b', { v: 1 })], 3, 'me')
  const got = list.replace([peer('b', { v: 2 }), peer('c')], 9)
  t.same(got.changes, [
    { kind: 'left', peerId: 'a', reason: 'unknown', peer: peer('a') },
    { kind: 'updated', peer: peer('b', { v: 2 }) },
    { kind: 'joined', peer: peer('c') }
  ])
})

t.test('a failed resync starts over on the next event', async t => {
  const list = new PeerList()
  list.replace([], 1, 'me')
  t.equal(list.receive({ type: 'peer-joined', peer: peer('c'), rev: 3 }).gap, true)
  list.abandonResync()
  t.equal(list.receive({ type: 'peer-joined', peer: peer('d'), rev: 4 }).gap, true)
})

t.test('a peer never listed (our own earlier connection) leaves silently', async t => {
  const list = new PeerList()
  list.replace([peer('a')], 2, 'me')
  t.same(list.receive({ type: 'peer-left', peerId: 'old-me', reason: 'timeout', rev: 3 }), { changes: [], gap: false })
  t.equal(list.rev, 3, 'the rev still advances')
})
