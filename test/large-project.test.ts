// A welcome and a `peers` reply list the project as it is, however long the list: long lists
// are joined from strings made once per peer (services/peer-json.ts), which must never go stale.
import t, { type Test } from 'tap'
import { build, token, type Built } from './helpers/app.ts'
import { connect, type Frame, type Peer } from './helpers/peer.ts'
import { startRedis } from './helpers/redis.ts'

const byId = (a: Frame, b: Frame): number => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0

/** Peers join through `nodes` in turn; every list is checked against the REST list of the first. */
async function largeProject (t: Test, nodes: Built[]): Promise<void> {
  const listed = async (): Promise<Frame[]> => {
    const res = await fetch(`${nodes[0].url}/v1/projects/big/peers`, { headers: { authorization: `Bearer ${token()}` } })
    return ((await res.json()) as { peers: Frame[] }).peers.sort(byId)
  }
  const peers: Peer[] = []
  for (let i = 0; i < 20; i++) {
    const peer = await connect(t, nodes[i % nodes.length].wsUrl('big'), { token: token({ sub: `u${i}`, name: `User ${i}` }) })
    const others = (await listed()).filter(p => p.peerId !== peer.peerId)
    t.same([...peer.welcome.peers].sort(byId), others, `joiner ${i + 1}'s welcome lists the ${i} before it`)
    peers.push(peer)
  }

  peers[3].send({ type: 'meta', meta: { status: 'away' }, id: 'm1' })
  // Every peer has seen the change (so has every node's replica) before the next join; over
  // Redis the ack may come before the event.
  const seen = new Set<string>()
  while (!seen.has('ack') || !seen.has('peer-updated')) seen.add((await peers[3].next()).type)
  for (const p of peers) if (p !== peers[3]) await p.nextOf('peer-updated')
  const late = await connect(t, nodes[nodes.length - 1].wsUrl('big'), { token: token({ sub: 'late' }) })
  const changed = late.welcome.peers.find((p: Frame) => p.peerId === peers[3].peerId)
  t.same(changed?.meta, { status: 'away' }, 'a welcome after a meta change shows the new meta')
  t.same([...late.welcome.peers].sort(byId), (await listed()).filter(p => p.peerId !== late.peerId))

  for (const [i, p] of peers.slice(0, nodes.length).entries()) {
    // Its node's replica has the late peer once it has told this peer so.
    while ((await p.nextOf('peer-joined')).peer.peerId !== late.peerId);
    p.send({ type: 'peers', id: `q${i}` })
    const reply = await p.nextOf('peers')
    t.same(Object.keys(reply).sort(), ['id', 'peers', 'rev', 'type'])
    t.equal(reply.id, `q${i}`)
    t.equal(reply.rev, 22, 'twenty-one joins and one update')
    t.same([...reply.peers].sort(byId), await listed(), `node ${i + 1}'s peers reply lists all 21`)
  }
}

t.test('one node: welcomes and peers replies of a large project match the REST list', async t => {
  await largeProject(t, [await build(t)])
})

t.test('two nodes over Redis: the same, through the Redis join and each node\'s replica', async t => {
  const redis = await startRedis(t)
  await largeProject(t, [
    await build(t, { registry: { redis: redis.url, nodeId: 'a' } }),
    await build(t, { registry: { redis: redis.url, nodeId: 'b' } })
  ])
})
