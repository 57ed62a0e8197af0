// One load-generator process (bench/run.ts forks several, all pinned to the generator's core).
// It holds its share of the peers, and on command sends at an open-loop rate and measures
// each delivery's latency from a timestamp embedded in the payload. Senders and their
// receivers always live in the same process, so one clock stamps and reads.
import { randomBytes } from 'node:crypto'
import { Histogram } from './lib/hist.ts'
import { FrameTemplate, WireSocket, readStamp, stamp, upgradeFields } from './lib/wire.ts'
import { payload, protocolFor, type PeerSpec, type Protocol, type TargetKind } from './lib/protocols.ts'

export type Command =
  | { cmd: 'prepare', kind: TargetKind, peers: PeerSpec[] }
  | { cmd: 'setup', ports: { A: number, B?: number }, addresses: string[], concurrency: number, payloadBytes: number }
  | { cmd: 'step', step: number, kind: 'signal' | 'broadcast', rate: number, durationMs: number, drainMs: number }
  | { cmd: 'teardown' }

export interface SetupResult {
  connected: number
  failed: number
  errors: string[]
  /** When this worker's first connection started and its last one ended (ms since the epoch). */
  from: number
  to: number
  senders: number
  unsupported?: boolean
}
export interface StepResult {
  sent: number
  expected: number
  received: number
  hist: { counts: number[], max: number }
  cpuUs: number
  sendMs: number
  /** How far behind its schedule the sender fell at worst (ms): a lagging generator shows here. */
  maxLagMs: number
  closed: number
  /** error frames received since the previous step. */
  errors: number
}

interface Conn { spec: PeerSpec, fields: string, wire: WireSocket | undefined, id: string | undefined }
interface Sender { wire: WireSocket, tpl: FrameTemplate, fanout: number }

let protocol: Protocol
let conns: Conn[] = []
let senders: Sender[] = []
let closed = 0
let errorFrames = 0
const errorTag = Buffer.from('"type":"error"')
const stepHist = new Map<number, Histogram>()
const stepReceived = new Map<number, number>()
let keepAlive: NodeJS.Timeout | undefined

function onText (conn: Conn, buf: Buffer, start: number, end: number): void {
  const answer = protocol.live?.(end - start, buf[start])
  if (answer !== undefined) {
    conn.wire?.sendText(answer)
    return
  }
  if (!readStamp(buf, start, end)) {
    // Refusals (peer_not_found, rate_limited…) explain a loss; count them for the report.
    const tag = buf.indexOf(errorTag, start)
    if (tag >= 0 && tag < end) {
      if (errorFrames++ === 0 && process.env.BENCH_DEBUG !== undefined) process.stderr.write(`generator: ${buf.toString('utf8', start, end)}\n`)
    }
    return
  }
  const now = performance.now() * 1000
  let h = stepHist.get(stamp.step)
  if (h === undefined) stepHist.set(stamp.step, h = new Histogram())
  h.record(now - stamp.us)
  stepReceived.set(stamp.step, (stepReceived.get(stamp.step) ?? 0) + 1)
}

async function connectOne (conn: Conn, ports: { A: number, B?: number }, address: string): Promise<void> {
  const spec = conn.spec
  const port = spec.node === 'B' ? ports.B ?? ports.A : ports.A
  let resolveId: (id: string) => void = () => {}
  let rejectId: (err: Error) => void = () => {}
  const ready = new Promise<string>((resolve, reject) => { resolveId = resolve; rejectId = reject })
  const wire = await WireSocket.open({
    host: '127.0.0.1', port, localAddress: address, path: protocol.path(spec), fields: conn.fields, timeoutMs: 15000
  }, {
    text: (buf, start, end, wire) => {
      if (conn.id !== undefined) { onText(conn, buf, start, end); return }
      const step = protocol.join(buf, start, end, spec)
      if (step === undefined) return
      if ('reply' in step) wire.sendText(step.reply)
      else if ('error' in step) rejectId(new Error(step.error))
      else { conn.id = step.id; resolveId(step.id) }
    },
    closed: (reason) => {
      closed++
      rejectId(new Error(`closed before ready: ${reason}`))
    }
  })
  conn.wire = wire
  const timer = setTimeout(() => rejectId(new Error('no welcome within 15 s')), 15000)
  try {
    await ready
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Tokens are minted in a command of their own, outside the connect window the bench times: a
 * client gets its token from an auth service ahead of connecting, and signing would load the
 * generator's core, not the server's. So are the upgrade requests' header lines and keys.
 */
function prepare (c: Extract<Command, { cmd: 'prepare' }>): void {
  protocol = protocolFor(c.kind)
  const keys = randomBytes(16 * c.peers.length)
  conns = c.peers.map((spec, i) => ({
    spec, fields: upgradeFields(protocol.headers(spec), keys.subarray(16 * i, 16 * i + 16)), wire: undefined, id: undefined
  }))
}

function epochMs (): number {
  return performance.timeOrigin + performance.now()
}

async function setup (c: Extract<Command, { cmd: 'setup' }>): Promise<SetupResult> {
  closed = 0
  const errors: string[] = []
  let failed = 0
  let next = 0
  const from = epochMs()
  // A bounded number of upgrades in flight, so the server's accept backlog never overflows
  // (an overflow costs a 1 s SYN retry and would be measured as a slow server).
  const lane = async (): Promise<void> => {
    while (next < conns.length) {
      const i = next++
      try {
        await connectOne(conns[i], c.ports, c.addresses[i % c.addresses.length])
      } catch (err) {
        failed++
        conns[i].wire?.destroy()
        conns[i].wire = undefined
        if (errors.length < 5) errors.push((err as Error).message)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(c.concurrency, conns.length) }, lane))
  const to = epochMs()

  const byKey = new Map(conns.map(x => [x.spec.key, x]))
  const text = payload(c.payloadBytes)
  senders = []
  let unsupported = false
  for (const x of conns) {
    if (x.wire === undefined || x.id === undefined) continue
    if (x.spec.role === 'sender') {
      const to = byKey.get(x.spec.to ?? -1)?.id
      if (to !== undefined) senders.push({ wire: x.wire, tpl: new FrameTemplate(protocol.signal(to, text)), fanout: 1 })
    } else if (x.spec.role === 'bsender') {
      if (protocol.broadcast === undefined) { unsupported = true; continue }
      const fanout = conns.filter(y => y.spec.project === x.spec.project && y.spec.role === 'breceiver' && y.id !== undefined).length
      senders.push({ wire: x.wire, tpl: new FrameTemplate(protocol.broadcast(text)), fanout })
    }
  }
  if (keepAlive !== undefined) clearInterval(keepAlive)
  const ka = protocol.keepAlive
  if (ka !== undefined) keepAlive = setInterval(() => { for (const x of conns) x.wire?.sendText(ka.text) }, ka.everyMs)
  return { connected: conns.length - failed, failed, errors, from, to, senders: senders.length, unsupported }
}

async function runStep (c: Extract<Command, { cmd: 'step' }>): Promise<StepResult> {
  const expectedPer = senders.map(s => s.fanout)
  errorFrames = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const interval = 1000 / c.rate
  let n = 0
  let expected = 0
  let idx = 0
  let maxLagMs = 0
  if (senders.length > 0 && c.rate > 0) {
    // Open loop: frame k is due at t0 + k·interval whatever the server answers; each timer
    // tick writes every frame that fell due since the previous one.
    await new Promise<void>(resolve => {
      const tick = (): void => {
        const now = performance.now()
        const end = Math.min(now, t0 + c.durationMs)
        if (n * interval + t0 <= end) maxLagMs = Math.max(maxLagMs, end - (t0 + n * interval))
        const us = now * 1000
        while (t0 + n * interval <= end) {
          const s = senders[idx]
          s.wire.write(s.tpl.stamp(c.step, us))
          expected += expectedPer[idx]
          if (++idx === senders.length) idx = 0
          n++
        }
        if (now >= t0 + c.durationMs) resolve()
        else setTimeout(tick, 1)
      }
      tick()
    })
  }
  const sendMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  // Late deliveries still count for their step: wait for them, up to drainMs.
  const drainEnd = performance.now() + c.drainMs
  while ((stepReceived.get(c.step) ?? 0) < expected && performance.now() < drainEnd) {
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const hist = stepHist.get(c.step) ?? new Histogram()
  return { sent: n, expected, received: stepReceived.get(c.step) ?? 0, hist: hist.toJSON(), cpuUs: cpu.user + cpu.system, sendMs, maxLagMs, closed, errors: errorFrames }
}

function teardown (): void {
  if (keepAlive !== undefined) clearInterval(keepAlive)
  keepAlive = undefined
  for (const x of conns) x.wire?.destroy()
  conns = []
  senders = []
  stepHist.clear()
  stepReceived.clear()
}

process.on('message', (msg: Command) => {
  const reply = (value: unknown): void => { process.send?.(value) }
  const failedSetup = (err: Error): SetupResult => ({ connected: 0, failed: conns.length, errors: [err.message], from: epochMs(), to: epochMs(), senders: 0 })
  if (msg.cmd === 'prepare') { prepare(msg); reply({ ok: true }) } else if (msg.cmd === 'setup') setup(msg).then(reply, (err: Error) => reply(failedSetup(err)))
  else if (msg.cmd === 'step') runStep(msg).then(reply, (err: Error) => reply({ error: err.message }))
  else if (msg.cmd === 'teardown') { teardown(); reply({ ok: true }) }
})
process.on('disconnect', () => { teardown(); process.exit(0) })
// Loaded: the pool holds its first command until every worker says so, so no timed window
// includes a worker still compiling its modules.
process.send?.({ ready: true })
