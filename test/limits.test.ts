// PROTOCOL.md §4: each limit and its close code or error, and §3's `auth` refresh.
import t, { type Test } from 'tap'
import type WebSocket from 'ws'
import { build, token } from './helpers/app.ts'
import { connect, type Frame, type Peer } from './helpers/peer.ts'
import { encodeFrame, portOf, rawWebSocket } from './helpers/raw.ts'

const seconds = (): number => Math.floor(Date.now() / 1000)

async function watched (t: Test, limits: Record<string, unknown> = {}, captureLogs?: string): Promise<{ watcher: Peer, wsUrl: (p: string) => string, port: number, logs: Array<Record<string, unknown>> }> {
  const { app, wsUrl, logs } = await build(t, { registry: { limits }, ...(captureLogs !== undefined ? { captureLogs } : {}) })
  const watcher = await connect(t, wsUrl('p1'), { token: token({ sub: 'watcher' }) })
  return { watcher, wsUrl, port: portOf(app.server), logs }
}

/** The watcher's view of `peerId` leaving. */
async function leftAs (watcher: Peer, peerId: string): Promise<string> {
  for (;;) {
    const f = await watcher.nextOf('peer-left')
    if (f.peerId === peerId) return f.reason
  }
}

async function joined (t: Test, watcher: Peer, wsUrl: (p: string) => string, sub: string, opts: { token?: string, wsOptions?: WebSocket.ClientOptions } = {}): Promise<Peer> {
  const p = await connect(t, wsUrl('p1'), { token: opts.token ?? token({ sub }), wsOptions: opts.wsOptions })
  await watcher.nextOf('peer-joined')
  return p
}

t.test('1009: a message over maxFrameBytes, whole or reassembled', async t => {
  const { watcher, wsUrl } = await watched(t)
  const a = await joined(t, watcher, wsUrl, 'a')
  const pad = 'x'.repeat(65536 - JSON.stringify({ type: 'broadcast', data: '' }).length)
  a.send({ type: 'broadcast', data: pad })
  t.equal((await watcher.next()).data.length, pad.length, 'exactly 64 KiB passes')
  a.send({ type: 'broadcast', data: pad + 'x' })
  t.equal((await a.closed).code, 1009)
  t.equal(await leftAs(watcher, a.peerId), 'kicked')
  const b = await joined(t, watcher, wsUrl, 'b')
  b.ws.send('{"type":"broadcast","data":"', { fin: false })
  b.ws.send(pad + 'x', { fin: false })
  b.ws.send('"}', { fin: true })
  t.equal((await b.closed).code, 1009, 'counted after reassembling fragments')
  t.equal(await leftAs(watcher, b.peerId), 'kicked')
})

t.test('1003: a binary frame', async t => {
  const { watcher, wsUrl } = await watched(t)
  const a = await joined(t, watcher, wsUrl, 'a')
  a.ws.send(Buffer.from('{"type":"ping"}'), { binary: true })
  t.equal((await a.closed).code, 1003)
  t.equal(await leftAs(watcher, a.peerId), 'kicked')
})

t.test('10 invalid frames in a row: each answered, the 10th also closes 1008', async t => {
  const { watcher, wsUrl } = await watched(t)
  const a = await joined(t, watcher, wsUrl, 'a')
  for (let i = 0; i < 9; i++) a.send('nope')
  a.send({ type: 'ping', id: 'reset' })
  for (let i = 0; i < 9; i++) t.match(await a.next(), { type: 'error', code: 'invalid_frame' })
  t.same(await a.next(), { type: 'pong', id: 'reset' }, 'a valid frame resets the count')
  for (let i = 0; i < 9; i++) a.send({ type: 'nope', id: `n${i}` })
  for (let i = 0; i < 9; i++) t.same((await a.next()).id, `n${i}`)
  a.send({ type: 'ping', id: 'reset2' })
  t.same(await a.next(), { type: 'pong', id: 'reset2' })
  for (let i = 0; i < 10; i++) a.send({ type: 'nope', id: `m${i}` })
  for (let i = 0; i < 10; i++) t.match(await a.next(), { type: 'error', code: 'invalid_frame', id: `m${i}` }, `invalid ${i + 1} answered`)
  t.equal((await a.closed).code, 1008)
  t.equal(await leftAs(watcher, a.peerId), 'kicked')
})

t.test('rate limit: rate_limited drops, then 1008 when the flood lasts', async t => {
  const { watcher, wsUrl } = await watched(t, { rateLimitPerSec: 20, rateLimitBurst: 5, rateLimitCloseAfterMs: 400 })
  const a = await joined(t, watcher, wsUrl, 'a')
  for (let i = 0; i < 6; i++) a.send({ type: 'ping', id: `r${i}` })
  for (let i = 0; i < 5; i++) t.same(await a.next(), { type: 'pong', id: `r${i}` })
  t.match(await a.next(), { type: 'error', id: 'r5', code: 'rate_limited', message: String }, 'the 6th is dropped with its id')
  // The stimulus, not a sync: keep flooding until the server gives up on us.
  const flood = setInterval(() => { if (a.ws.readyState === 1) a.send({ type: 'ping' }) }, 10)
  t.teardown(() => clearInterval(flood))
  t.equal((await a.closed).code, 1008)
  clearInterval(flood)
  t.equal(await leftAs(watcher, a.peerId), 'kicked')
})

t.test('rate-limited frames count as neither valid nor invalid', async t => {
  const { watcher, wsUrl } = await watched(t, { rateLimitPerSec: 20, rateLimitBurst: 5 })
  const a = await joined(t, watcher, wsUrl, 'a')
  for (let i = 0; i < 5; i++) a.send('bad')
  for (let i = 0; i < 5; i++) t.match(await a.next(), { code: 'invalid_frame' })
  a.send('bad')
  a.send({ type: 'ping', id: 'dropped' })
  t.match(await a.next(), { code: 'rate_limited' }, 'a dropped invalid frame')
  t.match(await a.next(), { code: 'rate_limited', id: 'dropped' }, 'a dropped valid frame')
  // Bounded poll for the bucket to refill: no event says it did.
  let counted = 5
  const deadline = Date.now() + 5000
  while (counted < 10 && Date.now() < deadline) {
    a.send('bad')
    const f = await a.next()
    if (f.code === 'invalid_frame') counted++
    else await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.equal(counted, 10, 'five more invalid frames were counted')
  t.equal((await a.closed).code, 1008, 'the 10th counted invalid frame closes: drops neither reset nor advanced the run')
})

t.test('4009: a slow consumer is closed, its project keeps working, memory stays bounded', async t => {
  const maxBufferedBytes = 65536
  const { watcher, wsUrl, logs } = await watched(t, { maxBufferedBytes, rateLimitPerSec: 1e6, rateLimitBurst: 1e6 }, 'info')
  const slow = await joined(t, watcher, wsUrl, 'slow')
  const flooder = await joined(t, watcher, wsUrl, 'flooder')
  const other = await joined(t, watcher, wsUrl, 'other')
  const socket = (slow.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  socket.pause()
  const chunk = 'y'.repeat(16 * 1024)
  const heapBefore = process.memoryUsage().heapUsed
  let left: Promise<string> | undefined = leftAs(watcher, slow.peerId)
  const state = { kicked: false }
  left.then(() => { state.kicked = true }, () => {})
  let sent = 0
  while (!state.kicked && sent < 4000) {
    for (let i = 0; i < 50; i++) flooder.send({ type: 'signal', to: slow.peerId, data: chunk })
    sent += 50
    flooder.send({ type: 'ping', id: `batch${sent}` })
    await flooder.nextOf('pong')
  }
  t.equal(await left, 'kicked', 'the slow consumer leaves as kicked')
  left = undefined
  const line = logs.find(l => l.msg === 'slow consumer closed')
  t.match(line, { closeCode: 4009 })
  t.ok(Number(line?.buffered) <= maxBufferedBytes + chunk.length + 1024, `closed once its buffer passed the limit (${String(line?.buffered)} bytes)`)
  t.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, 'the heap did not grow with the flood')
  other.send({ type: 'signal', to: watcher.peerId, data: 'still here', id: 'o1' })
  t.same(await watcher.nextOf('signal'), { type: 'signal', from: other.peerId, data: 'still here' }, 'the project\'s other peers keep exchanging')
  t.same(await other.nextOf('ack'), { type: 'ack', id: 'o1' })
  socket.resume()
  t.equal((await slow.closed).code, 4009, 'the slow consumer reads close 4009 once it reads again')
})

t.test('4009: a consumer that never reads again is terminated within 1 s', async t => {
  const { app, wsUrl } = await build(t, { registry: { limits: { maxBufferedBytes: 65536, rateLimitPerSec: 1e6, rateLimitBurst: 1e6 } } })
  const watcher = await connect(t, wsUrl('p1'), { token: token({ sub: 'watcher' }) })
  const slow = await joined(t, watcher, wsUrl, 'slow')
  const flooder = await joined(t, watcher, wsUrl, 'flooder')
  ;(slow.ws as unknown as { _socket: { pause: () => void } })._socket.pause()
  const left = leftAs(watcher, slow.peerId)
  const state = { kicked: false }
  left.then(() => { state.kicked = true }, () => {})
  const chunk = 'z'.repeat(16 * 1024)
  for (let sent = 0; !state.kicked && sent < 4000; sent += 50) {
    for (let i = 0; i < 50; i++) flooder.send({ type: 'signal', to: slow.peerId, data: chunk })
    flooder.send({ type: 'ping', id: `b${sent}` })
    await flooder.nextOf('pong')
  }
  t.equal(await left, 'kicked', 'it left at once, before its socket was ended')
  const kickedAt = Date.now()
  // A paused client never sees its socket end: watch the server's side, by a bounded poll.
  const connections = async (): Promise<number> => await new Promise((resolve, reject) => app.server.getConnections((err, n) => err !== null ? reject(err) : resolve(n)))
  while (await connections() > 2 && Date.now() - kickedAt < 3000) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(await connections(), 2, 'the server ended the socket without the close handshake')
  t.ok(Date.now() - kickedAt < 2500, 'within about a second (timers slip on a loaded machine)')
})

t.test('heartbeat: no pong since the last ping terminates, peer-left timeout', async t => {
  const { watcher, wsUrl } = await watched(t, { heartbeatMs: 60 })
  t.equal(watcher.welcome.heartbeatMs, 60)
  const mute = await joined(t, watcher, wsUrl, 'mute', { wsOptions: { autoPong: false } })
  // Application frames do not count as pongs.
  const chatter = setInterval(() => { if (mute.ws.readyState === 1) mute.send({ type: 'ping' }) }, 15)
  t.teardown(() => clearInterval(chatter))
  const pinged = new Promise<void>(resolve => mute.ws.once('ping', () => resolve()))
  await pinged
  t.pass('the server pings')
  t.equal(await leftAs(watcher, mute.peerId), 'timeout')
  t.equal((await mute.closed).code, 1006, 'terminated, no close frame')
  clearInterval(chatter)
  await new Promise<void>(resolve => watcher.ws.once('ping', () => resolve()))
  watcher.send({ type: 'ping', id: 'alive' })
  t.same(await watcher.nextOf('pong'), { type: 'pong', id: 'alive' }, 'a peer that answers pings stays')
})

t.test('token expiry 4001, auth refresh ack, refused refreshes keep the old expiry', async t => {
  const { watcher, wsUrl } = await watched(t, { clockToleranceMs: 0 })
  const exp = seconds() + 2
  const refreshed = await joined(t, watcher, wsUrl, 'r', { token: token({ sub: 'r', exp }) })
  const refused = await joined(t, watcher, wsUrl, 'x', { token: token({ sub: 'x', exp }) })
  await refreshed.nextOf('peer-joined')
  refreshed.send({ type: 'auth', token: token({ sub: 'r', exp: seconds() + 3600 }), id: 'a1' })
  t.same(await refreshed.next(), { type: 'ack', id: 'a1' })
  refreshed.send({ type: 'auth', token: token({ sub: 'r', exp: seconds() + 3600 }) })
  refreshed.send({ type: 'ping', id: 'no-ack' })
  t.same(await refreshed.next(), { type: 'pong', id: 'no-ack' }, 'no ack without an id')
  const bad: Array<[string, string]> = [
    ['another sub', token({ sub: 'someone-else', exp: seconds() + 3600 })],
    ['a bad signature', token({ sub: 'x', exp: seconds() + 3600 }, 'another-secret-of-sufficient-length')],
    ['an expired token', token({ sub: 'x', exp: seconds() - 10 })],
    ['garbage', 'a.b.c']
  ]
  for (const [name, jwt] of bad) {
    refused.send({ type: 'auth', token: jwt, id: 'a2' })
    const f = await refused.next()
    t.same(Object.keys(f).sort(), ['code', 'id', 'message', 'type'])
    t.match(f, { type: 'error', id: 'a2', code: 'unauthorized' }, name)
  }
  refused.send({ type: 'ping', id: 'still' })
  t.same(await refused.next(), { type: 'pong', id: 'still' }, 'the connection stays')
  const closed = await refused.closed
  t.same([closed.code, closed.reason], [4001, 'token expired'], 'the old expiry stood')
  t.equal(await leftAs(watcher, refused.peerId), 'kicked')
  refreshed.send({ type: 'ping', id: 'after' })
  t.same(await refreshed.nextOf('pong'), { type: 'pong', id: 'after' }, 'the refreshed session outlives its first token')
})

t.test('auth with a valid token that no longer grants the project: no ack, 4003, kicked', async t => {
  const { watcher, wsUrl } = await watched(t)
  const a = await joined(t, watcher, wsUrl, 'a', { token: token({ sub: 'a', projects: ['p1'] }) })
  a.send({ type: 'auth', token: token({ sub: 'a', projects: ['p2'] }), id: 'r1' })
  const closed = await a.closed
  t.equal(closed.code, 4003)
  t.same(a.pending().filter((f: Frame) => f.type === 'ack'), [], 'no ack')
  t.equal(await leftAs(watcher, a.peerId), 'kicked')
})

t.test('raw protocol violations: 1002, 1007, and 1008 past 1,024 fragments', async t => {
  const { watcher, port } = await watched(t)
  const open = async (sub: string): Promise<Awaited<ReturnType<typeof rawWebSocket>>> => {
    const raw = await rawWebSocket(t, port, '/v1/ws?project=p1', { authorization: `Bearer ${token({ sub })}` })
    t.equal((await raw.nextText()).type, 'welcome')
    await watcher.nextOf('peer-joined')
    return raw
  }
  const ping = Buffer.from('{"type":"ping"}')
  const cases: Array<[string, number, Buffer[]]> = [
    ['an unmasked frame', 1002, [encodeFrame(1, ping, { mask: false })]],
    ['RSV1 without an extension', 1002, [encodeFrame(1, ping, { rsv: 4 })]],
    ['RSV3', 1002, [encodeFrame(1, ping, { rsv: 1 })]],
    ['a control frame over 125 bytes', 1002, [encodeFrame(9, Buffer.alloc(126))]],
    ['a fragmented control frame', 1002, [encodeFrame(9, 'x', { fin: false })]],
    ['a stray continuation', 1002, [encodeFrame(0, ping)]],
    ['a reserved opcode', 1002, [encodeFrame(3, ping)]],
    ['a new message inside a fragmented one', 1002, [encodeFrame(1, '{"type"', { fin: false }), encodeFrame(1, ping)]],
    ['invalid UTF-8', 1007, [encodeFrame(1, Buffer.from([0x22, 0xc3, 0x28, 0x22]))]],
    ['1,025 fragments', 1008, [encodeFrame(1, '{', { fin: false }), ...Array.from({ length: 1024 }, () => encodeFrame(0, ' ', { fin: false }))]]
  ]
  for (const [name, code, frames] of cases) {
    const raw = await open(name.replace(/\W/g, ''))
    const welcome = raw.frames.length
    raw.write(Buffer.concat(frames))
    t.equal(await raw.closed, code, `${name}: ${code}`)
    t.equal(raw.frames.slice(welcome).filter(f => f.opcode === 1).length, 0, `${name}: no text answer`)
    t.equal(await watcher.nextOf('peer-left').then(f => f.reason), 'kicked', `${name}: kicked`)
  }
  // Frames read before the violation, in the same read, still get their answers, first.
  const early = await open('early')
  const welcomed = early.frames.length
  early.write(Buffer.concat([encodeFrame(1, '{"type":"ping","id":"before"}'), encodeFrame(1, ping, { mask: false })]))
  t.equal(await early.closed, 1002, 'a ping then an unmasked frame: 1002')
  t.same(early.frames.slice(welcomed).map(f => f.opcode === 1 ? JSON.parse(f.payload.toString()) : f.opcode), [{ type: 'pong', id: 'before' }, 8], 'the pong, then the close frame')
  await watcher.nextOf('peer-left')
  const ok = await open('fragments')
  ok.write(Buffer.concat([encodeFrame(1, '{"type":', { fin: false }), ...Array.from({ length: 1022 }, () => encodeFrame(0, '', { fin: false })), encodeFrame(0, '"ping","id":"f"}')]))
  t.same(await ok.nextText(), { type: 'pong', id: 'f' }, '1,024 fragments make one message')
})
