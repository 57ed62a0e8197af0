// Faults of a live cluster (issue 4): a node SIGKILLed, Redis killed and restarted, the
// subscriber connections killed, the data flushed. Each asserts PROTOCOL.md §3's promises.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { build, secret, token, type Built } from './helpers/app.ts'
import { connect, refused, type Peer } from './helpers/peer.ts'
import { freePort, startProxy, startRedis, until } from './helpers/redis.ts'

const ttl = 1000
const limits = { presenceTtlMs: ttl, heartbeatMs: 500 }

/** A registry in its own process (`node --import tsx server.ts`), so it can really crash. */
async function spawnNode (t: Test, redisUrl: string, nodeId: string): Promise<{ wsUrl: (p: string) => string, kill: () => Promise<void>, stop: () => Promise<number | null> }> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
    env: { ...process.env, REDIS_URL: redisUrl, NODE_ID: nodeId, PORT: String(port), JWT_SECRET: secret, PRESENCE_TTL_MS: String(ttl), HEARTBEAT_MS: '500', DEMO: 'false', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = once(child, 'exit')
  t.teardown(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited } })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('Server listening')) resolve() })
    child.once('exit', () => reject(new Error(`node exited before listening: ${out}`)))
  })
  return {
    wsUrl: (p) => `ws://127.0.0.1:${port}/v1/ws?project=${p}`,
    async kill () { child.kill('SIGKILL'); await exited },
    async stop () { child.kill('SIGTERM'); const [code] = await exited; return code as number | null }
  }
}

async function rest (node: Built, project: string): Promise<string[]> {
  const res = await fetch(`${node.url}/v1/projects/${project}/peers`, { headers: { authorization: `Bearer ${token({ sub: 'rest' })}` } })
  if (res.status !== 200) return [`status ${res.status}`]
  return ((await res.json()) as { peers: Array<{ peerId: string }> }).peers.map(p => p.peerId).sort()
}

async function ready (node: Built): Promise<number> {
  return (await fetch(`${node.url}/readyz`)).status
}

let users = 0
async function join (t: Test, url: string): Promise<Peer> {
  return await connect(t, url, { token: token({ sub: `f${++users}` }) })
}

t.test('a SIGKILLed node\'s peers leave elsewhere as timeout, once each, within TTL + 1 s', async t => {
  const redis = await startRedis(t)
  // Two live nodes, both sweeping: still one peer-left per crashed peer per observer.
  const n1 = await build(t, { registry: { redis: redis.url, nodeId: 'live', limits } })
  const n2 = await build(t, { registry: { redis: redis.url, nodeId: 'live2', limits } })
  const crashing = await spawnNode(t, redis.url, 'doomed')
  const observers = [await join(t, n1.wsUrl('c')), await join(t, n2.wsUrl('c'))]
  await observers[0].nextOf('peer-joined')
  const victims = [await join(t, crashing.wsUrl('c')), await join(t, crashing.wsUrl('c')), await join(t, crashing.wsUrl('c'))]
  for (const o of observers) for (let i = 0; i < victims.length; i++) await o.nextOf('peer-joined')
  const killedAt = Date.now()
  await crashing.kill()
  for (const o of observers) {
    const left = []
    for (let i = 0; i < victims.length; i++) left.push(await o.nextOf('peer-left', ttl + 1500))
    const elapsed = Date.now() - killedAt
    t.ok(elapsed <= ttl + 1000, `all left within ${elapsed} ms`)
    t.comment(`crash: ${victims.length} peer-left timeout seen ${elapsed} ms after SIGKILL (TTL ${ttl} ms)`)
    t.same(left.map(f => f.peerId).sort(), victims.map(v => v.peerId).sort())
    t.ok(left.every(f => f.reason === 'timeout'))
  }
  // Past 2 × TTL: no ghost, and no second peer-left anywhere.
  await until(() => Date.now() - killedAt > 2 * ttl, 5000)
  t.same(await rest(n1, 'c'), observers.map(o => o.peerId).sort())
  t.same(await rest(n2, 'c'), observers.map(o => o.peerId).sort())
  for (const o of observers) {
    o.send({ type: 'ping', id: 'z' })
    await o.nextOf('pong')
    t.notOk([...o.pending(), ...o.skipped].some(f => f.type === 'peer-left'), 'each peer-left once')
  }
})

t.test('SIGTERM: the node\'s peers leave at once as closed, and the node leaves wsp:nodes', async t => {
  const redis = await startRedis(t)
  const n1 = await build(t, { registry: { redis: redis.url, nodeId: 'live', limits } })
  const leaving = await spawnNode(t, redis.url, 'leaving')
  const observer = await join(t, n1.wsUrl('g'))
  const peers = [await join(t, leaving.wsUrl('g')), await join(t, leaving.wsUrl('g'))]
  for (let i = 0; i < peers.length; i++) await observer.nextOf('peer-joined')
  const stoppedAt = Date.now()
  const exit = leaving.stop()
  for (const p of peers) t.equal((await p.closed).code, 1001)
  const left = [await observer.nextOf('peer-left', 1000), await observer.nextOf('peer-left', 1000)]
  t.comment(`sigterm: ${left.length} peer-left closed after ${Date.now() - stoppedAt} ms`)
  t.same(left.map(f => f.reason), ['closed', 'closed'])
  t.same(left.map(f => f.peerId).sort(), peers.map(p => p.peerId).sort())
  t.equal(await exit, 0)
  t.notOk((await redis.cli('zrange', 'wsp:nodes', '0', '-1')).includes('leaving'), 'the node deregistered')
  t.equal(await redis.cli('keys', 'wsp:node:{leaving*'), '', 'and left no key behind')
})

t.test('a sweeper that died halfway: its expired lease is taken over, the ghost leaves once', async t => {
  const redis = await startRedis(t)
  const n1 = await build(t, { registry: { redis: redis.url, nodeId: 'live', limits } })
  const observer = await join(t, n1.wsUrl('k'))
  // What a crashed node whose sweeper also crashed leaves behind: its peer, its node set, and
  // the sweeper's claim (~instance), expired.
  const ghost = { peerId: 'ghostpeer', userId: 'ghostuser', meta: {}, connectedAt: new Date().toISOString() }
  await redis.cli('hset', 'wsp:{k}:peers', 'ghostpeer', `dead~0001|${JSON.stringify(ghost)}`)
  await redis.cli('sadd', 'wsp:node:{dead~0001}:projects', 'k')
  await redis.cli('sadd', 'wsp:node:{dead~0001}:users', 'ghostuser')
  await redis.cli('hset', 'wsp:user:{ghostuser}:peers', 'ghostpeer', 'dead~0001')
  await redis.cli('zadd', 'wsp:nodes', '0', '~dead~0001')
  t.match(await observer.nextOf('peer-left', ttl + 1000), { peerId: 'ghostpeer', reason: 'timeout' })
  await until(async () => await redis.cli('zscore', 'wsp:nodes', '~dead~0001') === '', 2000, 'the lease released')
  t.equal(await redis.cli('exists', 'wsp:node:{dead~0001}:projects', 'wsp:node:{dead~0001}:users', 'wsp:user:{ghostuser}:peers'), '0')
  t.same(await rest(n1, 'k'), [observer.peerId])
  observer.send({ type: 'ping', id: 'end' })
  await observer.nextOf('pong')
  t.notOk([...observer.pending(), ...observer.skipped].some(f => f.type === 'peer-left'), 'once')
})

/** Two in-process nodes on one Redis, peers a1 a2 on the first and b on the second. */
async function pair (t: Test): Promise<{ redis: Awaited<ReturnType<typeof startRedis>>, n1: Built, n2: Built, a1: Peer, a2: Peer, b: Peer, twice: () => string[] }> {
  const redis = await startRedis(t)
  const n1 = await build(t, { registry: { redis: redis.url, nodeId: 'n1', limits } })
  const n2 = await build(t, { registry: { redis: redis.url, nodeId: 'n2', limits } })
  const a1 = await join(t, n1.wsUrl('f'))
  const a2 = await join(t, n1.wsUrl('f'))
  const b = await join(t, n2.wsUrl('f'))
  await a1.nextOf('peer-joined')
  await a1.nextOf('peer-joined')
  // Relayed frames and replies are unique here (ids, probe data): one seen twice was delivered
  // twice. Presence events are not: after lost data a peer is re-announced, rev restarting.
  const seen = new Map<string, number>()
  for (const p of [a1, a2, b]) {
    p.ws.on('message', (raw) => {
      const text = raw.toString()
      if (text.startsWith('{"type":"peer-')) return
      seen.set(`${p.peerId} ${text}`, (seen.get(`${p.peerId} ${text}`) ?? 0) + 1)
    })
  }
  const twice = (): string[] => [...seen].filter(([, n]) => n > 1).map(([key]) => key)
  return { redis, n1, n2, a1, a2, b, twice }
}

/** Sends signals a → b until one is acked and delivered; resolves with how long that took. */
async function crossNodeResumes (a: Peer, b: Peer, since: number): Promise<number> {
  for (let i = 0; ; i++) {
    a.send({ type: 'signal', to: b.peerId, data: `probe${i}`, id: `probe${i}` })
    let reply = await a.next(2000).catch(() => undefined)
    while (reply !== undefined && reply.id !== `probe${i}`) reply = await a.next(2000).catch(() => undefined)
    if (reply?.type === 'ack') {
      const got = await b.nextOf('signal', 1000).catch(() => undefined)
      if (got?.data === `probe${i}`) return Date.now() - since
    }
    if (Date.now() - since > 10000) throw new Error('cross-node relay did not resume')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

t.test('Redis killed and restarted on the same port: degrade, then recover by itself', async t => {
  const { redis, n1, n2, a1, a2, b, twice } = await pair(t)
  const killedAt = Date.now()
  await redis.kill()
  await until(async () => await ready(n1) === 503, 2000, '/readyz 503')
  t.comment(`redis down: /readyz 503 after ${Date.now() - killedAt} ms`)
  t.match(await refused(n1.wsUrl('f'), { token: token({ sub: 'new' }) }), { status: 503, body: { code: 'unavailable' } })
  t.ok(Date.now() - killedAt < 2000, 'refusals within 2 s')
  // Same node: still delivered. Other node: a prompt `unavailable`, never a late delivery.
  a1.send({ type: 'signal', to: a2.peerId, data: 'local', id: 'l' })
  t.same(await a2.nextOf('signal'), { type: 'signal', from: a1.peerId, data: 'local' })
  t.same(await a1.nextOf('ack'), { type: 'ack', id: 'l' })
  a1.send({ type: 'signal', to: b.peerId, data: 'lost', id: 'x' })
  t.match(await a1.nextOf('error'), { id: 'x', code: 'unavailable' })
  a1.send({ type: 'broadcast', data: 'partial', id: 'bc' })
  t.same(await a2.nextOf('broadcast'), { type: 'broadcast', from: a1.peerId, data: 'partial' })
  t.match(await a1.nextOf('error'), { id: 'bc', code: 'unavailable' })
  a1.send({ type: 'peers', id: 'pp' })
  t.match(await a1.nextOf('error'), { id: 'pp', code: 'unavailable' })
  a1.send({ type: 'meta', meta: { away: true }, id: 'mm' })
  t.match(await a1.nextOf('error'), { id: 'mm', code: 'unavailable' })

  await redis.restart()
  const backAt = Date.now()
  await until(async () => await ready(n1) === 200 && await ready(n2) === 200, 5000, '/readyz 200')
  t.comment(`redis back: /readyz 200 after ${Date.now() - backAt} ms`)
  const resumed = await crossNodeResumes(a1, b, backAt)
  t.ok(resumed < 5000, `cross-node relay resumed ${resumed} ms after Redis came back`)
  t.comment(`redis back: cross-node relay resumed after ${resumed} ms`)
  const metrics = await (await fetch(`${n1.url}/metrics`)).text()
  t.match(metrics, /registry_redis_reconnects_total\{[^}]*\} [1-9]/, 'the reconnect is counted')
  // The data was lost with the process: every node re-asserted its peers.
  const all = [a1, a2, b].map(p => p.peerId).sort()
  await until(async () => (await rest(n1, 'f')).join() === all.join() && (await rest(n2, 'f')).join() === all.join(), 5000, 'presence rebuilt')
  b.send({ type: 'ping', id: 'end' })
  await b.nextOf('pong')
  t.notOk([...b.pending(), ...b.skipped].some(f => f.type === 'signal' && f.data === 'lost'), 'the refused signal never arrives')
  t.notOk([...b.pending(), ...b.skipped].some(f => f.type === 'broadcast'), 'the refused broadcast never arrives')
  t.same(twice(), [], 'no frame delivered twice')
})

t.test('Redis hung (SIGSTOP: the socket stays open, nothing answers), then resumed', async t => {
  const { redis, n1, a1, a2, b, twice } = await pair(t)
  const pid = redis.pid as number
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  const stoppedAt = Date.now()
  process.kill(pid, 'SIGSTOP')
  await until(async () => await ready(n1) === 503, 2500, '/readyz 503')
  const noticed = Date.now() - stoppedAt
  t.ok(noticed <= 2500, `noticed after ${noticed} ms`)
  t.comment(`redis hung: /readyz 503 after ${noticed} ms`)
  t.match(await refused(n1.wsUrl('f'), { token: token({ sub: 'new' }) }), { status: 503, body: { code: 'unavailable' } })
  a1.send({ type: 'signal', to: a2.peerId, data: 'local', id: 'l' })
  t.same(await a2.nextOf('signal'), { type: 'signal', from: a1.peerId, data: 'local' })
  a1.send({ type: 'signal', to: b.peerId, data: 'lost', id: 'x' })
  t.match(await a1.nextOf('error'), { id: 'x', code: 'unavailable' })
  process.kill(pid, 'SIGCONT')
  const backAt = Date.now()
  const resumed = await crossNodeResumes(a1, b, backAt)
  t.ok(resumed < 5000, `resumed ${resumed} ms after SIGCONT`)
  t.comment(`redis resumed: cross-node relay back after ${resumed} ms`)
  b.send({ type: 'ping', id: 'end' })
  await b.nextOf('pong')
  t.notOk([...b.pending(), ...b.skipped].some(f => f.type === 'signal' && f.data === 'lost'), 'the refused signal never arrives')
  t.same(twice(), [], 'no frame delivered twice')
})

t.test('one node cut off from Redis longer than the TTL: swept elsewhere, re-asserted when back', async t => {
  const redis = await startRedis(t)
  const proxy = await startProxy(t, redis.port)
  const n1 = await build(t, { registry: { redis: redis.url, nodeId: 'n1', limits } })
  const n2 = await build(t, { registry: { redis: proxy.url, nodeId: 'n2', limits } })
  const a = await join(t, n1.wsUrl('h'))
  const b1 = await join(t, n2.wsUrl('h'))
  const b2 = await join(t, n2.wsUrl('h'))
  await a.nextOf('peer-joined')
  await a.nextOf('peer-joined')
  const cutAt = Date.now()
  proxy.cut()
  await until(async () => await ready(n2) === 503, 2500, 'the cut-off node turns unready')
  t.comment(`partition: cut-off node /readyz 503 after ${Date.now() - cutAt} ms`)
  t.equal(await ready(n1), 200, 'the other node stays ready')
  const left = [await a.nextOf('peer-left', ttl + 1500), await a.nextOf('peer-left', 1000)]
  t.comment(`partition: its peers left elsewhere after ${Date.now() - cutAt} ms`)
  t.same(left.map(f => [f.reason, f.peerId]).sort(), [['timeout', b1.peerId], ['timeout', b2.peerId]].sort())
  // On the cut-off node, its peers keep talking to each other.
  b1.send({ type: 'signal', to: b2.peerId, data: 'still here', id: 'local' })
  t.same(await b2.nextOf('signal'), { type: 'signal', from: b1.peerId, data: 'still here' })
  b1.send({ type: 'signal', to: a.peerId, data: 'lost', id: 'x' })
  t.match(await b1.nextOf('error'), { id: 'x', code: 'unavailable' })

  const healedAt = Date.now()
  proxy.heal()
  const back = [await a.nextOf('peer-joined', 5000), await a.nextOf('peer-joined', 1000)]
  t.comment(`partition healed: its peers re-announced after ${Date.now() - healedAt} ms`)
  t.same(back.map(f => f.peer.peerId).sort(), [b1.peerId, b2.peerId].sort())
  const resumed = await crossNodeResumes(b1, a, healedAt)
  t.ok(resumed < 5000, `cross-node relay back ${resumed} ms after the partition healed`)
  t.same(await rest(n1, 'h'), [a, b1, b2].map(p => p.peerId).sort())
})

t.test('CLIENT KILL TYPE pubsub: subscriptions come back by themselves', async t => {
  const { redis, n1, n2, a1, b, twice } = await pair(t)
  const killedAt = Date.now()
  await redis.cli('client', 'kill', 'type', 'pubsub')
  const resumed = await crossNodeResumes(a1, b, killedAt)
  t.ok(resumed < 5000, `cross-node relay resumed ${resumed} ms after the kill`)
  t.comment(`pubsub killed: cross-node relay resumed after ${resumed} ms`)
  b.send({ type: 'signal', to: a1.peerId, data: 'back', id: 'back' })
  t.same(await a1.nextOf('signal'), { type: 'signal', from: b.peerId, data: 'back' })
  // Presence events flow again too: a newcomer is seen on the other node.
  const c = await join(t, n2.wsUrl('f'))
  t.match(await a1.nextOf('peer-joined', 1000), { peer: { peerId: c.peerId } })
  t.equal(await ready(n1), 200)
  a1.send({ type: 'ping', id: 'end' })
  await a1.nextOf('pong')
  const signals = [...a1.pending(), ...a1.skipped].filter(f => f.type === 'signal' && f.data === 'back')
  t.equal(signals.length, 0, 'no duplicate')
  t.same(twice(), [], 'no frame delivered twice')
})

t.test('FLUSHALL under a live cluster: presence rebuilt within one refresh interval, no peer-left', async t => {
  const { redis, n1, n2, a1, a2, b, twice } = await pair(t)
  const all = [a1, a2, b].map(p => p.peerId).sort()
  const flushedAt = Date.now()
  await redis.cli('flushall')
  const inRedis = async (): Promise<string> => (await redis.cli('hkeys', 'wsp:{f}:peers')).split('\n').filter(s => s !== '').sort().join()
  await until(async () => await inRedis() === all.join(), ttl, 'presence rebuilt in Redis')
  const rebuilt = Date.now() - flushedAt
  t.comment(`flushall: presence rebuilt in Redis after ${rebuilt} ms (refresh interval ${Math.floor(ttl / 3)} ms)`)
  await until(async () => (await rest(n1, 'f')).join() === all.join() && (await rest(n2, 'f')).join() === all.join(), 1000, 'REST lists agree')
  const resumed = await crossNodeResumes(a1, b, flushedAt)
  t.comment(`flushall: cross-node relay worked ${resumed} ms after the flush`)
  for (const p of [a1, a2, b]) {
    p.send({ type: 'ping', id: 'end' })
    await p.nextOf('pong')
    t.notOk([...p.pending(), ...p.skipped].some(f => f.type === 'peer-left'), 'no peer-left')
  }
  // The rebuilt presence keeps working: a leave is seen once on the other node.
  await a2.close()
  t.match(await b.nextOf('peer-left', 1000), { peerId: a2.peerId, reason: 'closed' })
  t.same(twice(), [], 'no frame delivered twice')
})
