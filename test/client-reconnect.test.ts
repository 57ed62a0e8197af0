// The SDK's staying power: reconnects when it should, never storms when it should not.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { WebSocketServer } from 'ws'
import registry, { type RegistryOptions } from '../app.ts'
import type { RegistryClient } from '../client/index.ts'
import { build, secret, token } from './helpers/app.ts'
import { BrowserSocket, next, open } from './helpers/client.ts'

const fast = { minDelayMs: 20, maxDelayMs: 100 }

async function serve (port: number, limits: RegistryOptions['limits'] = {}): Promise<{ app: FastifyInstance, url: string, port: number }> {
  const app = Fastify()
  await app.register(registry, { jwt: { secret }, limits })
  await app.listen({ host: '127.0.0.1', port })
  const address = app.server.address()
  const bound = typeof address === 'object' && address !== null ? address.port : port
  return { app, url: `http://127.0.0.1:${bound}`, port: bound }
}

/** A JWT `exp` (whole seconds) at least `s` seconds away, at most `s` + 1. */
const inSeconds = (s: number): number => Math.ceil(Date.now() / 1000) + s

t.test('reconnects after the server restarts on the same port', async t => {
  const first = await serve(0)
  t.teardown(() => first.app.close())
  const client = await open(t, first.url, 'p1', { reconnect: fast })
  await client.setMeta({ role: 'editor' })
  const oldId = client.peerId

  const reconnecting = next(client, 'reconnecting')
  const reconnected = next(client, 'reconnected')
  await first.app.close()
  t.match(await reconnecting, { attempt: 1, error: { code: 'going_away', closeCode: 1001 } })
  t.equal(client.state, 'reconnecting')

  const second = await serve(first.port)
  t.teardown(() => second.app.close())
  t.same(await reconnected, { peerId: client.peerId, previousPeerId: oldId })
  t.not(client.peerId, oldId, 'the new connection is a new peer')
  t.equal(client.state, 'open')

  // The meta set before the restart is set again; a newcomer sees it.
  const observer = await open(t, second.url, 'p1', { sub: 'bob' })
  const listed = observer.peers.get(client.peerId)
  if (listed?.meta.role === undefined) await next(observer, 'peer-updated')
  t.same(observer.peers.get(client.peerId)?.meta, { role: 'editor' })
  const got = next(observer, 'signal')
  await client.signal(observer.peerId, 'back')
  t.same(await got, { from: client.peerId, data: 'back' })
})

t.test('a token refreshed before exp keeps the session', async t => {
  const { url } = await build(t, { registry: { limits: { clockToleranceMs: 0 } } })
  let calls = 0
  let firstExp = 0
  const waiters: Array<() => void> = []
  const getToken = (): string => {
    calls++
    for (const w of waiters.splice(0)) w()
    const exp = inSeconds(1)
    if (firstExp === 0) firstExp = exp * 1000
    return token({ exp })
  }
  const client = await open(t, url, 'p1', { getToken, reconnect: fast })
  const id = client.peerId
  let reconnects = 0
  client.on('reconnecting', () => { reconnects++ })
  // Each refresh is an event; wait for refreshes until the first token is past its exp.
  while (Date.now() <= firstExp + 200) await new Promise<void>(resolve => waiters.push(resolve))
  t.ok(await client.ping() >= 0, 'still answered after the first token expired')
  t.ok(calls >= 2, `getToken asked again (${calls} calls)`)
  t.equal(reconnects, 0)
  t.equal(client.peerId, id, 'the same session')
  t.equal(client.connectionAttempts, 1)
})

t.test('after 4001 without getToken: one close event, no reconnect', async t => {
  const { url } = await build(t, { registry: { limits: { clockToleranceMs: 0 } } })
  const client = await open(t, url, 'p1', { token: token({ exp: inSeconds(1) }), reconnect: fast })
  let reconnects = 0
  client.on('reconnecting', () => { reconnects++ })
  const closed = await next(client, 'close', 5000)
  t.match(closed, { code: 4001, error: { code: 'token_expired', closeCode: 4001 } })
  t.equal(client.state, 'closed')
  t.equal(reconnects, 0)
  t.equal(client.connectionAttempts, 1)
})

t.test('after 4001 with getToken: a fresh token first, then one reconnect', async t => {
  const { url } = await build(t, { registry: { limits: { clockToleranceMs: 0 } } })
  let calls = 0
  const holder: { client?: RegistryClient } = {}
  const getToken = (): string => {
    calls++
    if (calls === 1) return token({ exp: inSeconds(1) })
    // Every refresh fails, so the server ends the session with 4001; the reconnect gets a token.
    if (holder.client?.state === 'open') throw new Error('token service down')
    return token({ exp: inSeconds(3600) })
  }
  const client = holder.client = await open(t, url, 'p1', { getToken, reconnect: fast, refreshBeforeMs: 10000 })
  const refreshFailed = next(client, 'error', 5000)
  const reconnecting = next(client, 'reconnecting', 5000)
  const reconnected = next(client, 'reconnected', 5000)
  t.match(await refreshFailed, { code: 'token_unavailable' })
  t.match(await reconnecting, { attempt: 1, delayMs: 0, error: { code: 'token_expired', closeCode: 4001 } })
  await reconnected
  t.equal(client.connectionAttempts, 2, 'one reconnect, with the fresh token')
  t.equal(client.state, 'open')
})

t.test('after 1008 (rate limit held too long): closed, no reconnect', async t => {
  const { url } = await build(t, { registry: { limits: { rateLimitPerSec: 1, rateLimitBurst: 1, rateLimitCloseAfterMs: 100 } } })
  const client = await open(t, url, 'p1', { reconnect: fast })
  const closed = next(client, 'close')
  let reconnects = 0
  client.on('reconnecting', () => { reconnects++ })
  const codes = new Set<string>()
  while (client.state === 'open') await client.ping().catch((e: { code: string }) => codes.add(e.code))
  t.ok(codes.has('rate_limited'))
  t.match(await closed, { code: 1008, error: { code: 'policy_violation' } })
  t.equal(reconnects, 0)
  t.equal(client.connectionAttempts, 1)
})

t.test('a connection silent for two heartbeats is treated as lost', async t => {
  // A server that welcomes and then says nothing, not even pings.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise(resolve => wss.once('listening', resolve))
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  let peers = 0
  wss.on('connection', ws => {
    peers++
    ws.send(JSON.stringify({ type: 'welcome', peerId: `p${peers}`, projectId: 'p1', peers: [], rev: 1, heartbeatMs: 50, limits: { maxFrameBytes: 65536, maxMetaBytes: 1024, rateLimitPerSec: 100, rateLimitBurst: 200, maxBufferedBytes: 1048576 } }))
  })
  const address = wss.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const started = Date.now()
  const client = await open(t, `http://127.0.0.1:${port}`, 'p1', { reconnect: fast })
  const lost = await next(client, 'reconnecting')
  t.match(lost, { error: { code: 'heartbeat_timeout' } })
  t.ok(Date.now() - started >= 100, 'not before two intervals')
  await next(client, 'reconnected')
  t.equal(client.peerId, 'p2')
})

t.test('where pings are invisible (browsers) an idle client sends app-level pings', async t => {
  const { url } = await build(t, { registry: { limits: { heartbeatMs: 200 } } })
  let pings = 0
  let thirdPing = (): void => {}
  const threePings = new Promise<void>(resolve => { thirdPing = resolve })
  class BrowserLike extends BrowserSocket {
    send (data: string): void {
      if (data.includes('"type":"ping"') && ++pings === 3) thirdPing()
      super.send(data)
    }
  }
  const client: RegistryClient = await open(t, url, 'p1', { WebSocket: BrowserLike, reconnect: fast })
  let reconnects = 0
  client.on('reconnecting', () => { reconnects++ })
  await threePings
  t.equal(reconnects, 0, 'pongs kept the idle connection alive')
  t.equal(client.state, 'open')
})

t.test('after a dead connection, the server\'s stale entry for it is not listed as a peer', async t => {
  const { url } = await build(t, { registry: { limits: { heartbeatMs: 100 } } })
  const cut = new Set<Blackholed>()
  // A network that silently stops delivering, both ways; the server still sees an open socket.
  class Blackholed extends BrowserSocket {
    protected receives (): boolean { return !cut.has(this) }
    close (code?: number, reason?: string): void { if (!cut.has(this)) super.close(code, reason) }
    send (data: string): void { if (!cut.has(this)) super.send(data) }
    destroy (): void { this.ws.terminate() }
  }
  const sockets: Blackholed[] = []
  const Tracked = class extends Blackholed {
    constructor (url: string) {
      super(url)
      sockets.push(this)
    }
  }
  t.teardown(() => { for (const s of sockets) s.destroy() })
  const client = await open(t, url, 'p1', { WebSocket: Tracked, reconnect: fast })
  const oldId = client.peerId
  const reconnected = next(client, 'reconnected')
  for (const s of sockets) cut.add(s)
  await reconnected
  const observer = await open(t, url, 'p1', { sub: 'bob' })
  t.ok(observer.peers.has(oldId), 'the server still lists the dead connection')
  t.notOk(client.peers.has(oldId), 'but the client does not count itself as another peer')
  t.same([...client.peers.keys()].filter(id => id !== observer.peerId), [])
})
