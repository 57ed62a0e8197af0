// The standalone entry (server.ts): environment validation, the dev secret and its demo token,
// and graceful shutdown on SIGTERM (PROTOCOL.md §4 close 1001).
import t from 'tap'
import { token } from './helpers/app.ts'
import { connect } from './helpers/peer.ts'
import { spawnServer, startServer } from './helpers/server.ts'
import { heapSnapshotSignal, readEnv } from '../services/env.ts'

const secret = 'server-test-secret-long-enough-for-hs256'

t.test('every bad variable is named by readEnv', async t => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ MAX_FRAME_BYTES: '64k' }, 'MAX_FRAME_BYTES'],
    [{ MAX_FRAME_BYTES: '10' }, 'MAX_FRAME_BYTES'],
    [{ HEARTBEAT_MS: '5' }, 'HEARTBEAT_MS'],
    [{ RATE_LIMIT_PER_SEC: '-1' }, 'RATE_LIMIT_PER_SEC'],
    [{ RATE_LIMIT_BURST: '1.5' }, 'RATE_LIMIT_BURST'],
    [{ MAX_PEERS_PER_PROJECT: '0' }, 'MAX_PEERS_PER_PROJECT'],
    [{ MAX_CONNECTIONS_PER_USER: 'many' }, 'MAX_CONNECTIONS_PER_USER'],
    [{ MAX_BUFFERED_BYTES: '100' }, 'MAX_BUFFERED_BYTES'],
    [{ PRESENCE_TTL_MS: '1' }, 'PRESENCE_TTL_MS'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ NODE_ID: 'bad id!' }, 'NODE_ID'],
    [{ JWT_PUBLIC_KEY: 'x' }, 'JWT_SECRET or JWT_PUBLIC_KEY']
  ]
  for (const [env, name] of cases) {
    t.throws(() => readEnv({ JWT_SECRET: secret, ...env }, () => 'dev'), { name: 'Error', message: new RegExp(name) }, `${JSON.stringify(env)} names ${name}`)
  }
  t.match(readEnv({ JWT_SECRET: secret }, () => 'dev'), { host: '127.0.0.1', port: 8080, logLevel: 'info', devSecret: false })
})

t.test('the --heapsnapshot-signal given to node is found in its flags or NODE_OPTIONS', async t => {
  t.equal(heapSnapshotSignal(['--import', 'tsx', '--heapsnapshot-signal=SIGUSR2']), 'SIGUSR2')
  t.equal(heapSnapshotSignal(['--heapsnapshot-signal', 'SIGUSR1']), 'SIGUSR1')
  t.equal(heapSnapshotSignal([], '--max-old-space-size=512 --heapsnapshot-signal=SIGHUP'), 'SIGHUP')
  t.equal(heapSnapshotSignal(['--heapsnapshot-signal=SIGUSR2'], '--heapsnapshot-signal=SIGHUP'), 'SIGUSR2', 'the command line over NODE_OPTIONS')
  t.equal(heapSnapshotSignal(['--heapsnapshot-near-heap-limit=2']), undefined)
  t.equal(heapSnapshotSignal([], undefined), undefined)
})

t.test('a bad variable stops the start with one line naming it', async t => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ MAX_FRAME_BYTES: '64k' }, 'MAX_FRAME_BYTES'],
    [{ HEARTBEAT_MS: '5' }, 'HEARTBEAT_MS']
  ]
  // Spawned together: each start costs a second of TypeScript loading.
  const runs = await Promise.all(cases.map(async ([env]) => {
    const s = await spawnServer(t, { JWT_SECRET: secret, ...env })
    return { s, exit: await s.exited }
  }))
  for (const [i, [env, name]] of cases.entries()) {
    const { s, exit } = runs[i]
    t.equal(exit.code, 1, `${JSON.stringify(env)}: exit 1`)
    t.equal(s.lines.length, 1, `${name}: one line and nothing else`)
    t.match(s.lines[0] ?? '', new RegExp(`^workstream-registry: .*${name}`), `${name}: the line names the variable`)
  }
})

t.test('NODE_ENV=production without a key refuses to start', async t => {
  const s = await spawnServer(t, { NODE_ENV: 'production' })
  t.equal((await s.exited).code, 1)
  t.match(s.lines.join('\n'), /JWT_SECRET or JWT_PUBLIC_KEY is required when NODE_ENV=production/)
})

t.test('without JWT_SECRET: a warning and a demo token that works', async t => {
  const s = await startServer(t, { DEMO: 'false' })
  const warning = await s.line(l => l.includes('JWT_SECRET is not set'))
  t.match(JSON.parse(warning), { level: 40 })
  await s.line(l => l.trim().startsWith('curl '))
  const demo = s.lines[s.lines.findIndex(l => l.startsWith('Demo token')) + 1].trim()
  t.match(demo, /^[\w-]+\.[\w-]+\.[\w-]+$/)
  const wscat = s.lines.find(l => l.includes('npx wscat -c')) ?? ''
  const url = /"(ws:\/\/[^"]+)"/.exec(wscat)?.[1] ?? ''
  t.equal(url, `ws://127.0.0.1:${s.port}/v1/ws?project=demo`, 'a ready-to-paste URL')
  const peer = await connect(t, url, { token: demo })
  t.match(peer.welcome, { type: 'welcome', projectId: 'demo' })
  const res = await fetch(`http://127.0.0.1:${s.port}/v1/projects/demo/peers`, { headers: { authorization: `Bearer ${demo}` } })
  t.equal(res.status, 200)
  t.equal((await res.json()).peers[0].peerId, peer.peerId)
  const closed = peer.closed
  s.child.kill('SIGTERM')
  t.equal((await closed).code, 1001)
})

t.test('SIGTERM closes every peer with 1001 and exits 0', async t => {
  const s = await startServer(t, { JWT_SECRET: secret })
  const url = `ws://127.0.0.1:${s.port}/v1/ws?project=p1`
  const sign = (sub: string): string => token({ sub }, secret)
  const a = await connect(t, url, { token: sign('a') })
  const b = await connect(t, url, { token: sign('b') })
  const unknown = await fetch(`http://127.0.0.1:${s.port}/nothing/here`)
  t.same([unknown.status, (await unknown.json()).code], [404, 'not_found'], 'an unknown path is 404 not_found')
  s.child.kill('SIGTERM')
  const [ca, cb] = await Promise.all([a.closed, b.closed])
  t.same([ca.code, cb.code], [1001, 1001])
  const exit = await s.exited
  t.same([exit.code, exit.signal], [0, null], 'exit 0')
  t.ok(s.lines.some(l => l.includes('"shutting down"')), 'logged why it stopped')
})

t.test('a client that never answers the 1001 does not hold the shutdown', async t => {
  const s = await startServer(t, { JWT_SECRET: secret })
  const url = `ws://127.0.0.1:${s.port}/v1/ws?project=p1`
  const deaf = await connect(t, url, { token: token({ sub: 'deaf' }, secret) })
  const polite = await connect(t, url, { token: token({ sub: 'polite' }, secret) })
  ;(deaf.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  const started = Date.now()
  s.child.kill('SIGTERM')
  t.equal((await polite.closed).code, 1001)
  const exit = await s.exited
  t.same([exit.code, exit.signal], [0, null], 'exit 0')
  t.ok(Date.now() - started < 5000, `exited in ${Date.now() - started} ms, not after the 10 s grace`)
})
