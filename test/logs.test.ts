// PROTOCOL.md §1: the server never logs a token, nor any segment of it, on any path, at any
// level; STYLE.md §8: nor frame data.
import t from 'tap'
import { build, token } from './helpers/app.ts'
import { connect, refused } from './helpers/peer.ts'
import { rawRequest } from './helpers/raw.ts'
import { startServer } from './helpers/server.ts'

const secret = 'logs-test-secret-long-enough-for-hs256'

/** Segments are checked one by one: the header segment alone is shared by every HS256 token. */
function leaks (lines: string[], jwt: string): string[] {
  const parts = [jwt, ...jwt.split('.').filter(p => p.length >= 8)]
  return lines.filter(l => parts.some(p => l.includes(p)))
}

/** Every kind of request that carries a token: good, bad, unknown path, header and query. */
async function exercise (port: number, good: string, bad: string, prefix = ''): Promise<void> {
  const base = `127.0.0.1:${port}${prefix}`
  const ws = `ws://${base}/v1/ws?project=p1`
  const t0 = { teardown: (fn: () => unknown) => { cleanups.push(fn) } }
  const cleanups: Array<() => unknown> = []
  const peer = await connect(t0, ws, { token: good })
  const viaQuery = await connect(t0, ws, { token: good, query: true })
  peer.send({ type: 'signal', to: viaQuery.peerId, data: { secret: good } })
  await viaQuery.nextOf('signal')
  peer.send({ type: 'auth', token: bad, id: 'a' })
  await peer.nextOf('error')
  peer.send({ type: 'auth', token: good, id: 'b' })
  await peer.nextOf('ack')
  for (const opts of [{ token: bad }, { token: bad, query: true }]) await refused(ws, opts)
  await refused(`ws://${base}/v1/ws?project=bad%20project`, { token: good, query: true })
  await refused(`ws://${base}/nowhere?access_token=${good}`, {})
  await refused(`ws://${base}/healthz?access_token=${good}`, {})
  for (const path of [`/v1/projects/p1/peers?access_token=${good}`, `/nowhere?access_token=${good}`, `/healthz?access_token=${good}`, `/v1/projects/a%20b/peers?access_token=${good}`]) {
    const variants: Array<Record<string, string>> = [{}, { authorization: `Bearer ${good}` }, { authorization: `Bearer ${bad}` }]
    for (const headers of variants) {
      await (await fetch(`http://${base}${path}`, { headers })).arrayBuffer()
    }
  }
  // A request the HTTP parser itself refuses, token and all.
  await rawRequest(port, `GET /v1/ws?project=p1&access_token=${good} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${good}\r\nBad Header: x\r\n\r\n`)
  const closes = [peer, viaQuery].map(p => p.closed)
  peer.ws.close()
  viaQuery.ws.send(Buffer.from('binary'), { binary: true })
  await Promise.all(closes)
  for (const c of cleanups) await c()
}

t.test('the standalone server at trace level logs no token', async t => {
  const s = await startServer(t, { JWT_SECRET: secret, LOG_LEVEL: 'trace' })
  const good = token({ sub: 'logged' }, secret)
  const bad = token({ sub: 'logged' }, 'some-other-secret-long-enough-for-hs256')
  await exercise(s.port, good, bad)
  await s.line(l => l.includes('"peer disconnected"') && l.includes('"closeCode":1003'))
  t.pass('one line per connection close, with its code')
  s.child.kill('SIGTERM')
  await s.exited
  t.ok(s.lines.length > 20, `${s.lines.length} lines captured`)
  t.ok(s.lines.some(l => l.includes('"level":10')), 'trace lines were captured')
  t.ok(s.lines.some(l => l.includes('[REDACTED]')), 'the query token was redacted where the URL is logged')
  t.same(leaks(s.lines, good), [], 'the good token nowhere')
  t.same(leaks(s.lines, bad), [], 'the bad token nowhere')
})

t.test('embedded: our routes log no token through the host\'s plain logger', async t => {
  const { app, logs } = await build(t, { captureLogs: 'trace', prefix: '/reg' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const good = token({ sub: 'logged' })
  const bad = token({ sub: 'logged' }, 'some-other-secret-long-enough-for-hs256')
  await exercise(port, good, bad, '/reg')
  // Unknown paths belong to the host's 404 handler and logger (README "Embedding").
  const ours = logs.map(l => JSON.stringify(l)).filter(l => !l.includes('/nowhere'))
  t.ok(ours.length > 20, `${ours.length} lines captured`)
  t.same(leaks(ours, good), [], 'the good token nowhere on our routes')
  t.same(leaks(ours, bad), [], 'the bad token nowhere on our routes')
})

t.test('embedded: request loggers keep the host\'s child factory, the request id and the redaction', async t => {
  const { wsUrl, logs } = await build(t, {
    captureLogs: 'info',
    fastify: {
      childLoggerFactory: function (logger, bindings, opts) { return logger.child({ ...bindings, tenant: 'host' }, opts) }
    }
  })
  const good = token({ sub: 'logged' })
  await connect(t, wsUrl('p1'), { token: good, query: true })
  const connected = logs.find(l => l.msg === 'peer connected')
  t.equal(connected?.tenant, 'host', 'the host\'s factory made the logger')
  t.match(connected?.reqId, /^req-/, 'with the request id')
  const incoming = logs.find(l => l.msg === 'incoming request' && JSON.stringify(l.req).includes('/v1/ws'))
  t.match(incoming, { tenant: 'host', req: { url: /access_token=\[REDACTED\]/ } }, 'the route\'s serializer still redacts the URL')
  t.same(leaks(logs.map(l => JSON.stringify(l)), good), [], 'the token nowhere')
})
