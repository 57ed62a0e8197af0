// Fuzzing a live connection with fast-check: random and mutated frames never crash the server,
// every answer is a frame of the contract (PROTOCOL.md §3), and the other peers keep working.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { checkServerFrame } from '../services/frames.ts'
import { build, token } from './helpers/app.ts'
import { connect, type Frame, type Peer } from './helpers/peer.ts'

const types = ['signal', 'broadcast', 'peers', 'meta', 'auth', 'ping']
const errorCodes = new Set(['invalid_frame', 'peer_not_found', 'unauthorized'])

/** Frames near the schema: right and wrong types, missing and extra fields, odd values. */
function nearFrame (peerIds: string[]): fc.Arbitrary<unknown> {
  const value = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(...peerIds), fc.string({ maxLength: 200 }))
  return fc.record({
    type: fc.oneof(fc.constantFrom(...types), fc.string(), fc.integer(), fc.constant(null)),
    to: fc.oneof(fc.constantFrom(...peerIds), value),
    data: value,
    id: fc.oneof(fc.string({ minLength: 1, maxLength: 64 }), fc.string({ maxLength: 80 }), value),
    meta: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })), value),
    token: fc.oneof(fc.string(), fc.constant('a.b.c'), value),
    from: fc.constantFrom(...peerIds),
    extra: value
  }, { requiredKeys: [] })
}

/** Schema-valid frames, so the fuzz also walks the paths that act (relay, meta, auth). */
function validFrame (peerIds: string[]): fc.Arbitrary<unknown> {
  const id = fc.option(fc.string({ minLength: 1, maxLength: 64 }), { nil: undefined })
  const data = fc.jsonValue({ maxDepth: 3 })
  const strip = (f: Record<string, unknown>): unknown => Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined))
  return fc.oneof(
    fc.record({ type: fc.constant('signal'), to: fc.constantFrom(...peerIds), data, id }).map(strip),
    fc.record({ type: fc.constant('broadcast'), data, id }).map(strip),
    fc.record({ type: fc.constant('peers'), id }).map(strip),
    fc.record({ type: fc.constant('meta'), meta: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }), id }).map(strip),
    fc.record({ type: fc.constant('auth'), token: fc.oneof(fc.string({ minLength: 1 }), fc.constant('a.b.c')), id }).map(strip),
    fc.record({ type: fc.constant('ping'), id }).map(strip)
  )
}

/** Any text: JSON of anything, near-frames, and raw strings (valid UTF-8, as a text frame must be). */
function anyText (peerIds: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    validFrame(peerIds).map(v => JSON.stringify(v)),
    nearFrame(peerIds).map(v => JSON.stringify(v)),
    fc.jsonValue().map(v => JSON.stringify(v)),
    fc.string({ unit: 'grapheme', maxLength: 300 }),
    nearFrame(peerIds).map(v => JSON.stringify(v)).chain(s => fc.nat(s.length).map(n => s.slice(0, n)))
  )
}

/** Every frame a peer received so far must be a frame of the contract. */
function allValid (t: Test, frames: Frame[], who: string): void {
  const bad = frames.filter(f => !checkServerFrame.Check(f))
  t.same(bad, [], `${who}: ${frames.length} frames, all of the contract`)
}

t.test('thousands of random and mutated frames at a live connection', async t => {
  const { wsUrl } = await build(t, { registry: { limits: { rateLimitPerSec: 1e6, rateLimitBurst: 1e6 } } })
  const fuzzer = await connect(t, wsUrl('p1'), { token: token({ sub: 'fuzzer' }) })
  const b = await connect(t, wsUrl('p1'), { token: token({ sub: 'b' }) })
  const c = await connect(t, wsUrl('p1'), { token: token({ sub: 'c' }) })
  const seenB: Frame[] = []
  const seenC: Frame[] = []
  const seenFuzzer: Frame[] = []
  b.ws.on('message', d => seenB.push(JSON.parse(d.toString())))
  c.ws.on('message', d => seenC.push(JSON.parse(d.toString())))
  const peerIds = [fuzzer.peerId, b.peerId, c.peerId, 'nobody']
  let n = 0
  await fc.assert(fc.asyncProperty(anyText(peerIds), async (text) => {
    fuzzer.send(text)
    // A valid ping after each frame: its pong bounds the answers, and resets the invalid run.
    const id = `fuzz-${n++}`
    fuzzer.send({ type: 'ping', id })
    for (;;) {
      const f = await fuzzer.next()
      seenFuzzer.push(f)
      if (!checkServerFrame.Check(f)) return false
      if (f.type === 'error' && !errorCodes.has(f.code)) return false
      if (f.type === 'broadcast' && f.from === fuzzer.peerId) return false
      if (f.type === 'pong' && f.id === id) return true
    }
  }), { numRuns: 3000, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) })
  t.ok(seenFuzzer.length >= 3000, `${seenFuzzer.length} answers read`)
  t.ok(seenFuzzer.some(f => f.type === 'error' && f.code === 'invalid_frame'), 'some frames were invalid')
  t.ok(seenFuzzer.some(f => f.type === 'ack' || f.type === 'peer-updated' || f.type === 'peers'), 'some frames were valid')

  b.send({ type: 'signal', to: c.peerId, data: 'after the storm', id: 'z' })
  let got = await c.nextOf('signal')
  while (got.from !== b.peerId) got = await c.nextOf('signal')
  t.same(got, { type: 'signal', from: b.peerId, data: 'after the storm' }, 'the other peers still talk')
  t.same(await b.nextOf('ack'), { type: 'ack', id: 'z' })
  fuzzer.send({ type: 'peers', id: 'end' })
  t.equal((await fuzzer.nextOf('peers')).peers.length, 3, 'nobody was lost')
  allValid(t, seenB, 'b')
  allValid(t, seenC, 'c')
})

t.test('random bytes as one message, text or binary: the server answers or closes, never crashes', async t => {
  const { wsUrl } = await build(t)
  const watcher: Peer = await connect(t, wsUrl('p1'), { token: token({ sub: 'watcher' }) })
  await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.boolean(), async (bytes, binary) => {
    const p = await connect(t, wsUrl('p1'), { token: token({ sub: 'random' }) })
    await watcher.nextOf('peer-joined')
    p.ws.send(Buffer.from(bytes), { binary })
    p.send({ type: 'ping', id: 'after' })
    const outcome = await Promise.race([p.nextOf('pong').then(() => 'open' as const), p.closed.then(c => c.code)])
    if (outcome === 'open') {
      await p.close()
    }
    const left = await watcher.nextOf('peer-left')
    return outcome === 'open' ? left.reason === 'closed' : [1003, 1007, 1008].includes(outcome) && left.reason === 'kicked'
  }), { numRuns: 150 })
  watcher.send({ type: 'ping', id: 'alive' })
  t.same(await watcher.nextOf('pong'), { type: 'pong', id: 'alive' })
})
