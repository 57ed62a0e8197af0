// PROTOCOL.md §4: request headers, the upgrade's included, must complete within 20 s, while an
// upgraded peer lives on past it. Takes ~22 s of wall time, mostly waiting, on its own.
import t from 'tap'
import net from 'node:net'
import { token } from './helpers/app.ts'
import { connect } from './helpers/peer.ts'
import { parseReply } from './helpers/raw.ts'
import { startServer } from './helpers/server.ts'

const secret = 'timeouts-test-secret-long-enough-for-hs256'

t.test('an upgrade whose headers trickle is dropped after 20 s; a live peer is not', async t => {
  const s = await startServer(t, { JWT_SECRET: secret, HEARTBEAT_MS: '5000' })
  const peer = await connect(t, `ws://127.0.0.1:${s.port}/v1/ws?project=p1`, { token: token({ sub: 'steady' }, secret) })
  const started = Date.now()
  const slow = net.connect(s.port, '127.0.0.1')
  t.teardown(() => slow.destroy())
  slow.on('error', () => {})
  let reply = ''
  slow.on('data', (d: Buffer) => { reply += d.toString('latin1') })
  slow.write(`GET /v1/ws?project=p1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token({ sub: 'slow' }, secret)}\r\n`)
  // The stimulus, not a sync: one more header every second, never the blank line that ends them.
  let n = 0
  const trickle = setInterval(() => { if (!slow.destroyed) slow.write(`X-Trickle-${n++}: 1\r\n`) }, 1000)
  t.teardown(() => clearInterval(trickle))
  await new Promise<void>(resolve => slow.once('close', () => resolve()))
  clearInterval(trickle)
  const elapsed = Date.now() - started
  t.ok(elapsed >= 19000 && elapsed < 30000, `dropped after ${elapsed} ms`)
  const status = parseReply(reply).status
  t.ok(status === 408 || status === 0, `answered 408 or simply closed (${status || 'closed'})`)
  peer.send({ type: 'ping', id: 'still' })
  t.same(await peer.nextOf('pong'), { type: 'pong', id: 'still' }, 'the upgraded peer outlived the request timeout')
  t.equal(peer.ws.readyState, 1)
})
