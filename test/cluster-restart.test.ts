// A node restarted while 2,000 of its peers reconnect (issue 4): every peer comes back, and
// every observer on another node sees exactly one peer-left and one peer-joined per peer.
import t from 'tap'
import WebSocket from 'ws'
import { build, token, type Built } from './helpers/app.ts'
import { connect } from './helpers/peer.ts'
import { startRedis, until } from './helpers/redis.ts'

const projects = 40
const perProject = 50
const limits = { maxPeersPerProject: 5000, maxConnectionsPerUser: 5000, presenceTtlMs: 2000 }

const writes = /^cmdstat_(zadd|zrem|hset|hdel|sadd|srem|incr|set|del|spublish|publish):calls=(\d+)/gm

/** Write commands per second Redis executed over 2 s (INFO commandstats counts those inside scripts too). */
async function idleWrites (redis: { cli: (...args: string[]) => Promise<string> }): Promise<number> {
  await redis.cli('config', 'resetstat')
  const from = Date.now()
  await until(() => Date.now() - from >= 2000, 3000)
  const stats = await redis.cli('info', 'commandstats')
  return Math.round([...stats.matchAll(writes)].reduce((sum, m) => sum + Number(m[2]), 0) * 1000 / (Date.now() - from))
}

interface Counts { left: Map<string, number>, joined: Map<string, number> }

t.test('2,000 peers reconnect to their restarted node: one peer-left and one peer-joined each', async t => {
  const redis = await startRedis(t)
  const n1 = await build(t, { registry: { redis: redis.url, nodeId: 'stays', limits } })
  let n2: Built = await build(t, { registry: { redis: redis.url, nodeId: 'restarts', limits } })
  const counts: Counts[] = []
  for (let p = 0; p < projects; p++) {
    const observer = await connect(t, n1.wsUrl(`r${p}`), { token: token({ sub: `obs${p}` }) })
    const c: Counts = { left: new Map(), joined: new Map() }
    counts.push(c)
    observer.ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString())
      if (f.type === 'peer-joined') c.joined.set(f.peer.peerId, (c.joined.get(f.peer.peerId) ?? 0) + 1)
      if (f.type === 'peer-left') c.left.set(f.peerId, (c.left.get(f.peerId) ?? 0) + 1)
    })
  }

  const quiet = await idleWrites(redis)

  let resolveNext: (b: Built) => void = () => {}
  const restarted = new Promise<Built>(resolve => { resolveNext = resolve })
  const current = new Map<number, Set<string>>()
  const sockets = new Set<WebSocket>()
  t.teardown(() => { for (const ws of sockets) ws.terminate() })
  /** One peer that reconnects, once, to the restarted node when its node closes it with 1001. */
  async function peer (index: number, node: Built, reconnect: boolean): Promise<void> {
    const p = index % projects
    const ws = new WebSocket(node.wsUrl(`r${p}`), { headers: { authorization: `Bearer ${token({ sub: `u${index}` })}` } })
    sockets.add(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('message', (raw) => {
        const welcome = JSON.parse(raw.toString())
        let set = current.get(p)
        if (set === undefined) current.set(p, set = new Set())
        set.add(welcome.peerId)
        ws.once('close', (code) => {
          set.delete(welcome.peerId)
          if (reconnect && code === 1001) {
            restarted.then(next => peer(index, next, false)).catch(err => t.fail(String(err)))
          }
        })
        resolve()
      })
      ws.once('error', reject)
    })
  }
  for (let i = 0; i < projects * perProject; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, k) => peer(i + k, n2, true)))
  }
  await until(() => counts.every(c => c.joined.size === perProject), 10000, 'every join seen')
  const before = counts.map((_, p) => new Set(current.get(p)))

  // The restart: close (peers get 1001 and leave as closed), then a new process on the same node id.
  const startedAt = Date.now()
  await n2.app.close()
  n2 = await build(t, { registry: { redis: redis.url, nodeId: 'restarts', limits } })
  resolveNext(n2)
  // Observers hear a join before its peer reads its welcome: wait for both.
  const back = (): number => [...current.values()].reduce((n, set) => n + set.size, 0)
  await until(() => counts.every(c => c.joined.size === 2 * perProject && c.left.size === perProject) && back() === projects * perProject, 30000, 'every peer back')
  t.comment(`restart: ${projects * perProject} peers left and rejoined in ${Date.now() - startedAt} ms`)

  for (let p = 0; p < projects; p++) {
    const c = counts[p]
    const after = current.get(p) ?? new Set()
    t.equal(after.size, perProject, `project ${p}: every peer back`)
    const onceEach = [...c.left.values(), ...c.joined.values()].every(n => n === 1)
    const rightIds = [...before[p]].every(id => c.left.has(id)) && [...after].every(id => c.joined.has(id))
    if (!onceEach || !rightIds) t.fail(`project ${p}: ${JSON.stringify({ left: [...c.left], joined: [...c.joined] })}`)
  }
  t.pass('each observer saw exactly one peer-left and one peer-joined per reconnecting peer')
  const res = await fetch(`${n1.url}/v1/projects/r0/peers`, { headers: { authorization: `Bearer ${token({ sub: 'rest' })}` } })
  t.equal(((await res.json()) as { peers: unknown[] }).peers.length, perProject + 1)

  const busy = await idleWrites(redis)
  t.comment(`idle: ${busy} Redis writes/s with ${projects * perProject + projects} idle peers on 2 nodes, ${quiet} with ${projects}`)
  // Timer jitter moves a refresh in or out of the window; per-peer work would be thousands.
  t.ok(busy <= quiet + 2, 'Redis work does not grow with idle peers')
})
