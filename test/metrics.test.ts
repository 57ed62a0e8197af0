import t from 'tap'
import { build, token } from './helpers/app.ts'
import { connect, refused } from './helpers/peer.ts'

/** The value of one series of a Prometheus text exposition, or undefined when absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = m[2] ?? ''
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[3])
  }
  return undefined
}

async function scrape (url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/plain/)
  return await res.text()
}

t.test('frames, errors, refusals, closes and gauges are counted', async t => {
  const { url, wsUrl } = await build(t)
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  await a.nextOf('peer-joined')

  // 64 signals guarantee at least one timed relay (one frame in 64 is sampled).
  for (let i = 0; i < 64; i++) b.send({ type: 'signal', to: a.peerId, data: i, id: `s${i}` })
  for (let i = 0; i < 64; i++) await a.nextOf('signal')
  for (let i = 0; i < 64; i++) await b.nextOf('ack')
  b.send({ type: 'broadcast', data: 'hi' })
  await a.nextOf('broadcast')
  b.send({ type: 'ping', id: 'p' })
  await b.nextOf('pong')
  b.send({ type: 'nope' })
  t.match(await b.nextOf('error'), { code: 'invalid_frame' })
  b.send({ type: 'signal', to: 'ghost', data: 1 })
  t.match(await b.nextOf('error'), { code: 'peer_not_found' })
  t.equal((await refused(wsUrl('p1'))).status, 401)
  t.equal((await refused(wsUrl('p1'), { token: token({ projects: ['other'] }) })).status, 403)

  let text = await scrape(url)
  t.equal(sample(text, 'registry_connections'), 2)
  t.equal(sample(text, 'registry_peers'), 2)
  t.equal(sample(text, 'registry_projects'), 1)
  t.equal(sample(text, 'registry_frames_in_total', { type: 'signal' }), 65)
  t.equal(sample(text, 'registry_frames_in_total', { type: 'broadcast' }), 1)
  t.equal(sample(text, 'registry_frames_in_total', { type: 'invalid' }), 1)
  t.equal(sample(text, 'registry_frames_in_total', { type: 'meta' }), 0, 'known types show from the start')
  t.equal(sample(text, 'registry_frames_out_total', { type: 'signal' }), 64)
  t.equal(sample(text, 'registry_frames_out_total', { type: 'ack' }), 64)
  t.equal(sample(text, 'registry_frames_out_total', { type: 'broadcast' }), 1)
  t.equal(sample(text, 'registry_frames_out_total', { type: 'welcome' }), 2)
  // b's join to a, plus each peer's own join: handed to it while its upgrade was still in
  // progress (queued, counted) and dropped at attach because its welcome already holds it.
  t.equal(sample(text, 'registry_frames_out_total', { type: 'peer-joined' }), 3)
  t.equal(sample(text, 'registry_frames_out_total', { type: 'error' }), 2)
  t.equal(sample(text, 'registry_frame_errors_total', { code: 'invalid_frame' }), 1)
  t.equal(sample(text, 'registry_frame_errors_total', { code: 'peer_not_found' }), 1)
  t.equal(sample(text, 'registry_refusals_total', { code: 'unauthorized' }), 1)
  t.equal(sample(text, 'registry_refusals_total', { code: 'forbidden' }), 1)
  t.equal(sample(text, 'registry_slow_consumer_closes_total'), 0)
  t.ok((sample(text, 'registry_relay_seconds_count') ?? 0) >= 1, 'relay latency sampled')
  t.ok(sample(text, 'nodejs_eventloop_lag_p99_seconds') !== undefined, 'event-loop lag exported')
  t.match(text, /node="[0-9a-f]+"/, 'series carry the node label')

  await b.close(1000)
  await a.nextOf('peer-left')
  text = await scrape(url)
  t.equal(sample(text, 'registry_closes_total', { code: '1000' }), 1)
  t.equal(sample(text, 'registry_peers'), 1)
  t.equal(sample(text, 'registry_connections'), 1, 'the hub stops counting a socket once its peer left')
  // Counters are flushed as deltas: a second scrape must not double them.
  t.equal(sample(text, 'registry_frames_in_total', { type: 'signal' }), 65)
})

t.test('a slow consumer close is counted', async t => {
  const { url, wsUrl } = await build(t, { registry: { limits: { maxBufferedBytes: 1024, rateLimitPerSec: 100000, rateLimitBurst: 100000 } } })
  const a = await connect(t, wsUrl('p1'), { token: token({ sub: 'a' }) })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  // a stops reading, so the registry's buffer towards it fills up.
  a.ws.pause()
  const big = 'x'.repeat(60000)
  for (let i = 0; i < 200; i++) b.send({ type: 'signal', to: a.peerId, data: big })
  // A slow consumer leaves at once (PROTOCOL.md §4), before its socket has finished closing.
  t.match(await b.nextOf('peer-left', 10000), { peerId: a.peerId, reason: 'kicked' })
  const text = await scrape(url)
  t.equal(sample(text, 'registry_slow_consumer_closes_total'), 1)
})

t.test('metrics: false serves no /metrics', async t => {
  const { url } = await build(t, { registry: { metrics: false } })
  const res = await fetch(`${url}/metrics`)
  t.equal(res.status, 404)
})
