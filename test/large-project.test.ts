// A welcome and a `peers` reply list the project as it is, however long the list: long lists
// are joined from strings made once per peer (services/peer-json.ts), which must never go stale.
import t from 'tap'
import { build, token } from './helpers/app.ts'
import { connect, type Frame, type Peer } from './helpers/peer.ts'

const byId = (a: Frame, b: Frame): number => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0

t.test('a large project\'s welcomes and peers replies match the REST list, after a meta change too', async t => {
  const { url, wsUrl } = await build(t)
  const listed = async (): Promise<Frame[]> => {
    const res = await fetch(`${url}/v1/projects/big/peers`, { headers: { authorization: `Bearer ${token()}` } })
    return ((await res.json()) as { peers: Frame[] }).peers.sort(byId)
  }
  const peers: Peer[] = []
  for (let i = 0; i < 20; i++) {
    const peer = await connect(t, wsUrl('big'), { token: token({ sub: `u${i}`, name: `User ${i}` }) })
    const others = (await listed()).filter(p => p.peerId !== peer.peerId)
    t.same([...peer.welcome.peers].sort(byId), others, `joiner ${i + 1}'s welcome lists the ${i} before it`)
    peers.push(peer)
  }

  peers[3].send({ type: 'meta', meta: { status: 'away' }, id: 'm1' })
  await peers[3].nextOf('ack')
  const late = await connect(t, wsUrl('big'), { token: token({ sub: 'late' }) })
  const changed = late.welcome.peers.find((p: Frame) => p.peerId === peers[3].peerId)
  t.same(changed?.meta, { status: 'away' }, 'a welcome after a meta change shows the new meta')
  t.same([...late.welcome.peers].sort(byId), (await listed()).filter(p => p.peerId !== late.peerId))

  peers[0].send({ type: 'peers', id: 'q1' })
  const reply = await peers[0].nextOf('peers')
  t.same(Object.keys(reply).sort(), ['id', 'peers', 'rev', 'type'])
  t.equal(reply.id, 'q1')
  t.equal(reply.rev, 22, 'twenty-one joins and one update')
  t.same([...reply.peers].sort(byId), await listed(), 'the peers reply lists all 21')
})
