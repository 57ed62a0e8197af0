// One contract for the two seams, run against every backend (STYLE.md §5): a backend is a
// factory of nodes sharing one cluster; each node gets its PresenceStore and its Bus.
import type { Test } from 'tap'
import type { Bus, BusMessage } from '../services/bus/bus.ts'
import type { Peer, PresenceEvent, PresenceStore } from '../services/presence/store.ts'

export interface ContractNode { presence: PresenceStore, bus: Bus }
export type Backend = (nodeId: string) => Promise<ContractNode>
export type MakeBackend = (t: Test) => Promise<Backend>

const limits = { maxPeersPerProject: 3, maxConnectionsPerUser: 2 }
let seq = 0

function peer (userId: string): Peer {
  return { peerId: `peer${++seq}x${Date.now().toString(36)}`, userId, meta: {}, connectedAt: new Date().toISOString() }
}

/** Collects a project's presence events as a hub would, feeding the node's store. */
async function listen (node: ContractNode, projectId: string): Promise<{ events: PresenceEvent[], next: (n: number) => Promise<PresenceEvent[]> }> {
  const events: PresenceEvent[] = []
  let wake: (() => void) | undefined
  await node.bus.subscribeProject(projectId, (msg: BusMessage) => {
    if (msg.kind !== 'presence') return
    node.presence.observe(msg.projectId, msg.event, msg.source)
    events.push(msg.event)
    wake?.()
  })
  const next = async (n: number): Promise<PresenceEvent[]> => {
    const deadline = Date.now() + 2000
    while (events.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${events.length} of ${n} events`)
      await new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, 50) })
    }
    return events.splice(0, n)
  }
  return { events, next }
}

export function presenceContract (t: Test, name: string, make: MakeBackend): void {
  t.test(`${name}: join, update and leave are announced in rev order`, async t => {
    const backend = await make(t)
    const n1 = await backend('n1')
    const project = `c${++seq}`
    const ears = await listen(n1, project)
    const a = peer('ua')
    const b = peer('ub')
    t.match(await n1.presence.join(project, a, 'n1', limits), { ok: true, peers: [], rev: 1 })
    t.match(await n1.presence.join(project, b, 'n1', limits), { ok: true, peers: [a], rev: 2 })
    t.match(await n1.presence.update(project, { ...b, meta: { x: 1 } }), { ok: true, rev: 3 })
    await n1.presence.leave(project, a.peerId, 'closed')
    await n1.presence.leave(project, a.peerId, 'closed')
    t.same((await ears.next(4)).map(e => [e.type, e.rev]), [['peer-joined', 1], ['peer-joined', 2], ['peer-updated', 3], ['peer-left', 4]])
    t.match(await n1.presence.list(project), { ok: true, peers: [{ peerId: b.peerId, meta: { x: 1 } }], rev: 4 })
    t.equal(n1.presence.locate(project, b.peerId), 'n1')
    t.equal(n1.presence.locate(project, a.peerId), undefined)
    await n1.presence.leave(project, b.peerId, 'kicked')
    t.match(await ears.next(1), [{ type: 'peer-left', peerId: b.peerId, reason: 'kicked', rev: 5 }])
    // The empty project keeps nothing: its rev restarts.
    t.match(await n1.presence.list(project), { ok: true, peers: [], rev: 0 })
    t.match(await n1.presence.join(project, peer('uc'), 'n1', limits), { ok: true, rev: 1 })
  })

  t.test(`${name}: limits hold across nodes`, async t => {
    const backend = await make(t)
    const [n1, n2] = [await backend('n1'), await backend('n2')]
    const project = `c${++seq}`
    for (const [i, node] of [n1, n2, n1].entries()) {
      t.match(await node.presence.join(project, peer(`u${i}`), i === 1 ? 'n2' : 'n1', limits), { ok: true })
    }
    t.match(await n2.presence.join(project, peer('u9'), 'n2', limits), { ok: false, code: 'project_full' })
    const other = `c${++seq}`
    t.match(await n1.presence.join(other, peer('same'), 'n1', limits), { ok: true })
    t.match(await n2.presence.join(other, peer('same'), 'n2', limits), { ok: true })
    t.match(await n2.presence.join(other, peer('same'), 'n2', limits), { ok: false, code: 'too_many_connections' })
  })

  t.test(`${name}: a leave frees the places it held`, async t => {
    const backend = await make(t)
    const n1 = await backend('n1')
    const project = `c${++seq}`
    const a = peer('solo')
    await n1.presence.join(project, a, 'n1', limits)
    await n1.presence.join(project, peer('solo'), 'n1', limits)
    t.match(await n1.presence.join(project, peer('solo'), 'n1', limits), { ok: false, code: 'too_many_connections' })
    await n1.presence.leave(project, a.peerId, 'closed')
    t.match(await n1.presence.join(project, peer('solo'), 'n1', limits), { ok: true })
  })

  t.test(`${name}: the bus carries directed and project messages`, async t => {
    const backend = await make(t)
    const [n1, n2] = [await backend('n1'), await backend('n2')]
    const got: string[] = []
    const onNode = (m: BusMessage): void => { if (m.kind === 'signal') got.push(`node:${m.frame}`) }
    const onProject = (m: BusMessage): void => { if (m.kind === 'broadcast') got.push(`project:${m.frame}`) }
    await n2.bus.subscribeNode('n2', onNode)
    await n2.bus.subscribeProject('bp', onProject)
    t.equal(n1.bus.toNode('n2', { kind: 'signal', projectId: 'bp', to: 'x', frame: '{"a":"|1"}' }), true)
    t.equal(n1.bus.toProject('bp', { kind: 'broadcast', projectId: 'bp', from: 'x', origin: 'n1', frame: '{"b":2}' }), true)
    const deadline = Date.now() + 2000
    while (got.length < 2 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    t.same(got, ['node:{"a":"|1"}', 'project:{"b":2}'])
    await n2.bus.unsubscribeProject('bp', onProject)
    await n2.bus.unsubscribeNode('n2', onNode)
  })
}
