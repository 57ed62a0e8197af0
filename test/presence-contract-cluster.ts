// The multi-node half of the contract: three registry nodes, each with its own Redis
// connections, behave as one registry (PROTOCOL.md §3 "Delivery"). Run on one Redis and on a
// Redis Cluster.
import type { Test } from 'tap'
import { build, token, type Built } from './helpers/app.ts'
import { connect, type Peer } from './helpers/peer.ts'

export async function threeNodes (t: Test, url: string, limits: Record<string, number> = {}): Promise<Built[]> {
  const nodes: Built[] = []
  for (const n of ['n1', 'n2', 'n3']) {
    nodes.push(await build(t, { registry: { redis: url, nodeId: `${n}-${Math.random().toString(36).slice(2, 6)}`, limits } }))
  }
  return nodes
}

let users = 0
export async function join (t: Test, node: Built, project: string, sub = `u${++users}`): Promise<Peer> {
  return await connect(t, node.wsUrl(project), { token: token({ sub }) })
}

/** Waits for `n` presence events on `peer` (skipping others), each within 1 s. */
async function presence (peer: Peer, n: number): Promise<Array<Record<string, unknown>>> {
  const out = []
  while (out.length < n) {
    const f = await peer.next(1000)
    if (f.type === 'peer-joined' || f.type === 'peer-left' || f.type === 'peer-updated') out.push(f)
  }
  return out
}

export function multiNodeSuite (t: Test, name: string, redisUrl: (t: Test) => Promise<string>): void {
  t.test(`${name}: presence is the same on every node, in the same rev order`, async t => {
    const nodes = await threeNodes(t, await redisUrl(t))
    const observers = []
    for (const node of nodes) {
      observers.push(await join(t, node, 'p'))
      await Promise.all(observers.slice(0, -1).map(o => presence(o, 1)))
    }
    const newcomer = await join(t, nodes[0], 'p')
    newcomer.send({ type: 'meta', meta: { status: 'busy' } })
    await presence(newcomer, 1)
    await newcomer.close()
    const seen = await Promise.all(observers.map(o => presence(o, 3)))
    const [first] = seen
    t.match(first, [{ type: 'peer-joined', peer: { peerId: newcomer.peerId } }, { type: 'peer-updated', peer: { meta: { status: 'busy' } } }, { type: 'peer-left', reason: 'closed' }])
    t.same(first.map(e => e.rev), [4, 5, 6], 'consecutive revs')
    for (const s of seen) t.same(s, first, 'every node saw the same events')
  })

  t.test(`${name}: signal, broadcast and REST across nodes`, async t => {
    const nodes = await threeNodes(t, await redisUrl(t))
    const a = await join(t, nodes[0], 'q')
    const b = await join(t, nodes[1], 'q')
    const c = await join(t, nodes[2], 'q')
    const d = await join(t, nodes[0], 'q')
    a.send({ type: 'signal', to: c.peerId, data: { sdp: 'offer' }, id: 's1' })
    t.same(await c.nextOf('signal'), { type: 'signal', from: a.peerId, data: { sdp: 'offer' } })
    t.same(await a.nextOf('ack'), { type: 'ack', id: 's1' })
    a.send({ type: 'signal', to: 'nobody', data: 1, id: 's2' })
    t.match(await a.nextOf('error'), { id: 's2', code: 'peer_not_found' })

    a.send({ type: 'broadcast', data: 1, id: 'b1' })
    a.send({ type: 'broadcast', data: 2, id: 'b2' })
    t.same(await a.nextOf('ack'), { type: 'ack', id: 'b1' })
    t.same(await a.nextOf('ack'), { type: 'ack', id: 'b2' })
    for (const p of [b, c, d]) {
      t.same([await p.nextOf('broadcast'), await p.nextOf('broadcast')], [{ type: 'broadcast', from: a.peerId, data: 1 }, { type: 'broadcast', from: a.peerId, data: 2 }])
      p.send({ type: 'ping', id: 'after' })
      t.same(await p.nextOf('pong'), { type: 'pong', id: 'after' })
      t.notOk([...p.pending(), ...p.skipped].some(f => f.type === 'broadcast'), 'each broadcast once')
    }
    t.notOk([...a.pending(), ...a.skipped].some(f => f.type === 'broadcast'), 'never to its sender')

    const lists = await Promise.all(nodes.map(async n => {
      const res = await fetch(`${n.url}/v1/projects/q/peers`, { headers: { authorization: `Bearer ${token({ sub: 'rest' })}` } })
      const body = await res.json() as { peers: Array<{ peerId: string }> }
      return body.peers.map(p => p.peerId).sort()
    }))
    t.same(lists[0], [a, b, c, d].map(p => p.peerId).sort())
    t.same(lists[1], lists[0])
    t.same(lists[2], lists[0])
  })

  t.test(`${name}: 1,000 signals across nodes arrive complete and in order`, async t => {
    // The per-connection rate limit (§4) is not what this measures.
    const nodes = await threeNodes(t, await redisUrl(t), { rateLimitPerSec: 100000, rateLimitBurst: 100000 })
    const a = await join(t, nodes[0], 'r')
    const b = await join(t, nodes[2], 'r')
    await a.nextOf('peer-joined')
    const got: number[] = []
    const done = new Promise<void>(resolve => {
      b.ws.on('message', (raw) => {
        const f = JSON.parse(raw.toString())
        if (f.type === 'signal') got.push(f.data)
        if (got.length === 1000) resolve()
      })
    })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`only ${got.length} signals arrived`)), 20000) })
    for (let i = 0; i < 1000; i++) a.send({ type: 'signal', to: b.peerId, data: i })
    await Promise.race([done, late]).finally(() => clearTimeout(timer))
    t.same(got, Array.from({ length: 1000 }, (_, i) => i))
  })

  t.test(`${name}: first peers joining a project on two nodes at once know each other`, async t => {
    const nodes = await threeNodes(t, await redisUrl(t))
    for (let round = 0; round < 20; round++) {
      const project = `both${round}`
      const [a, b] = await Promise.all([join(t, nodes[0], project), join(t, nodes[1], project)])
      // Whichever joined second found the other in its welcome; the other heard of it by event.
      for (const [from, to] of [[a, b], [b, a]]) {
        if (!from.welcome.peers.some((p: { peerId: string }) => p.peerId === to.peerId)) await from.nextOf('peer-joined')
        from.send({ type: 'signal', to: to.peerId, data: round, id: `r${round}` })
        t.same(await from.nextOf('ack'), { type: 'ack', id: `r${round}` }, `round ${round}: routed`)
      }
      await Promise.all([a.close(), b.close()])
    }
  })

  t.test(`${name}: the (N+1)th peer is refused even when the N sit on other nodes, also in a race`, async t => {
    const nodes = await threeNodes(t, await redisUrl(t), { maxPeersPerProject: 3 })
    await join(t, nodes[0], 'full')
    await join(t, nodes[1], 'full')
    await join(t, nodes[2], 'full')
    const { refused } = await import('./helpers/peer.ts')
    const r = await refused(nodes[0].wsUrl('full'), { token: token({ sub: 'late' }) })
    t.match(r, { status: 403, body: { code: 'project_full' } })
    // Two nodes race for the last place, many times over: exactly one wins each time.
    for (let round = 0; round < 10; round++) {
      const project = `race${round}`
      await join(t, nodes[0], project)
      await join(t, nodes[2], project)
      const outcomes = await Promise.allSettled([join(t, nodes[0], project), join(t, nodes[1], project)])
      t.equal(outcomes.filter(o => o.status === 'fulfilled').length, 1, `round ${round}: one winner`)
    }
  })
}
