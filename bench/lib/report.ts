// Turns a run into bench/results/: a markdown table (every figure with its ratio to the raw
// `ws` relay), the JSON of everything measured, and an SVG of p99 latency vs offered rate.
import type { CapacityReport, RateReport, StepReport } from '../scenarios.ts'
import type { StallProbe } from './procs.ts'
import type { TargetKind } from './protocols.ts'

export interface RunReport {
  date: string
  command: string
  quick: boolean
  repeat: number
  machine: { cpu: string, cores: number, node: string, stalls?: StallProbe[] }
  targets: TargetKind[]
  capacity: Partial<Record<TargetKind, CapacityReport>>
  /** The connect path's floor (bench/baselines/ws-floor.ts), capacity only. */
  floor?: CapacityReport
  relay: Partial<Record<TargetKind, RateReport>>
  broadcast: Partial<Record<TargetKind, RateReport>>
  cross?: RateReport
  durationSec: number
}

const names: Record<TargetKind, string> = { ours: 'ours', raw: 'raw ws', socketio: 'Socket.IO 4.8', peerjs: 'PeerJS 1.0' }

function fmt (n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return 'n/a'
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

function ratio (ours: number | undefined, raw: number | undefined): string {
  if (ours === undefined || raw === undefined || raw === 0 || !Number.isFinite(ours) || !Number.isFinite(raw)) return 'n/a'
  return `${(ours / raw).toFixed(2)}×`
}

/** The step at the highest rate every target passed, so latencies compare at equal load. */
function commonStep (reports: Array<RateReport | undefined>): number | undefined {
  const passed = reports.filter((r): r is RateReport => r !== undefined && r.skipped === undefined)
    .map(r => new Set(r.steps.filter(s => s.ok).map(s => s.rate)))
  if (passed.length === 0) return undefined
  const all = [...passed[0]].filter(rate => passed.every(p => p.has(rate)))
  return all.length === 0 ? undefined : Math.max(...all)
}

/** The rate of the issue's "server CPU per relayed message" target. */
const targetRate = 10000

function at (r: RateReport | undefined, rate: number | undefined): StepReport | undefined {
  return rate === undefined ? undefined : r?.steps.find(s => s.rate === rate)
}

/** The highest step at or below `rate`: half a saturation point need not be a step. */
function halfStep (r: RateReport, rate: number): number | undefined {
  const below = r.steps.map(s => s.rate).filter(x => x <= rate)
  return below.length === 0 ? undefined : Math.max(...below)
}

function best (r: RateReport | undefined): StepReport | undefined {
  if (r === undefined) return undefined
  return r.steps.filter(s => s.ok).sort((a, b) => b.rate - a.rate)[0]
}

/**
 * The highest step below the first failed one. A single step's p99 can cross 50 ms at random
 * on this machine, and a server can pass a step above one it failed; this reads the curve
 * as sustained, where `saturation` takes the issue's words literally (the highest passing step).
 */
function sustained (r: RateReport | undefined): number | undefined {
  if (r === undefined || r.skipped !== undefined) return undefined
  let last: number | undefined
  for (const s of [...r.steps].sort((a, b) => a.rate - b.rate)) {
    if (!s.ok) break
    last = s.rate
  }
  return last ?? 0
}

export function markdown (run: RunReport): string {
  const others = run.targets.filter(t => t !== 'ours' && t !== 'raw')
  const head = ['scenario', 'metric', 'ours', 'raw ws', 'ours/raw', ...others.map(t => names[t])]
  const rows: string[][] = []
  const row = (scenario: string, metric: string, get: (t: TargetKind) => number | undefined, digits = 0, extra?: (t: TargetKind) => string | undefined): void => {
    rows.push([scenario, metric, extra?.('ours') ?? fmt(get('ours'), digits), extra?.('raw') ?? fmt(get('raw'), digits), ratio(get('ours'), get('raw')),
      ...others.map(t => extra?.(t) ?? fmt(get(t), digits))])
  }
  const cap = run.capacity
  row('capacity', 'idle peers connected', t => cap[t]?.connected)
  row('capacity', `connect rate (peers/s)${run.repeat > 1 ? `, best of ${run.repeat} rounds` : ''}`, t => cap[t]?.connectPerSec)
  row('capacity', 'server CPU per connection (µs)', t => cap[t]?.serverUsPerPeer)
  row('capacity', 'server RSS per peer (KB)', t => cap[t]?.rssPerPeerKB, 1)
  row('capacity', 'server heap per peer (KB)', t => cap[t]?.heapPerPeerKB, 1)
  row('capacity', 'server CPU while connecting (%)', t => cap[t]?.serverCpuPct)
  row('capacity', 'generator CPU while connecting (%)', t => cap[t]?.generatorCpuPct)

  const rl = run.relay
  const common = commonStep(run.targets.map(t => rl[t]))
  row('directed relay', 'saturation (msg/s, ≥99 % delivered, p99 < 50 ms)', t => rl[t]?.saturation)
  row('directed relay', 'sustained saturation (every step up to it passed)', t => sustained(rl[t]))
  row('directed relay', 'highest fully delivered step (msg/s delivered; queues allowed)', t => rl[t]?.throughput)
  row('directed relay', 'p50 at saturation (ms)', t => best(rl[t])?.p50Ms, 2)
  row('directed relay', 'p99 at saturation (ms)', t => best(rl[t])?.p99Ms, 2)
  row('directed relay', 'server CPU at saturation (%)', t => best(rl[t])?.serverCpuPct)
  row('directed relay', 'generator CPU at saturation (%)', t => best(rl[t])?.generatorCpuPct)
  if (common !== undefined) {
    row('directed relay', `p50 at ${fmt(common)} msg/s (ms)`, t => at(rl[t], common)?.p50Ms, 2)
    row('directed relay', `p99 at ${fmt(common)} msg/s (ms)`, t => at(rl[t], common)?.p99Ms, 2)
    row('directed relay', `max at ${fmt(common)} msg/s (ms)`, t => at(rl[t], common)?.maxMs, 1)
    row('directed relay', `server CPU at ${fmt(common)} msg/s (%)`, t => at(rl[t], common)?.serverCpuPct)
  }

  // The issue states its CPU target at 10,000 msg/s; the common step above moves with the
  // slowest baseline, so the 10,000 step gets its own rows whenever it is not that step.
  if (common !== targetRate && at(rl.ours, targetRate) !== undefined) {
    row('directed relay', `p99 at ${fmt(targetRate)} msg/s (ms)`, t => at(rl[t], targetRate)?.p99Ms, 2)
    row('directed relay', `server CPU at ${fmt(targetRate)} msg/s (%)`, t => at(rl[t], targetRate)?.serverCpuPct)
  }

  const half = rl.ours?.saturation === undefined ? undefined : halfStep(rl.ours, rl.ours.saturation / 2)
  if (half !== undefined) {
    row('directed relay', `p99 at half our saturation, ${fmt(half)} msg/s (ms)`, t => at(rl[t], half)?.p99Ms, 2)
  }
  const foreign = (r: RateReport | undefined): number | undefined => r === undefined || r.steps.length === 0 ? undefined : r.steps.reduce((x, s) => x + s.foreignLoadPct, 0) / r.steps.length
  row('directed relay', 'foreign load on the server core, mean of steps (%)', t => foreign(rl[t]))

  const bc = run.broadcast
  const skipped = (r: Partial<Record<TargetKind, RateReport>>) => (t: TargetKind) => r[t]?.skipped !== undefined ? 'n/a (no broadcast)' : undefined
  const bcommon = commonStep(run.targets.map(t => bc[t]))
  row('broadcast 1→49', 'deliveries/s at saturation', t => best(bc[t])?.deliveriesPerSec, 0, skipped(bc))
  row('broadcast 1→49', 'highest fully delivered step (deliveries/s; queues allowed)', t => bc[t]?.throughput, 0, skipped(bc))
  row('broadcast 1→49', 'p99 at saturation (ms)', t => best(bc[t])?.p99Ms, 2, skipped(bc))
  row('broadcast 1→49', 'server CPU at saturation (%)', t => best(bc[t])?.serverCpuPct, 0, skipped(bc))
  if (bcommon !== undefined) {
    row('broadcast 1→49', `p99 at ${fmt(bcommon)} broadcasts/s (ms)`, t => at(bc[t], bcommon)?.p99Ms, 2, skipped(bc))
  }

  const lines = [
    `Run ${run.date} — \`${run.command}\` — ${run.durationSec.toFixed(0)} s; ${run.machine.cpu}, ${run.machine.cores} cores, Node ${run.machine.node}.`,
    'Server pinned to core 0, generator processes to core 1. Ratios are ours ÷ raw ws: above 1× is more for throughput and memory, slower for latency.',
    ...(run.machine.stalls === undefined
      ? []
      : [`Machine before the run (a busy loop pinned to each core, \`bench/stall-probe.ts\`): ${run.machine.stalls.map(p => `core ${p.core} lost ${fmt(p.lostPct, 1)} % of its time in gaps ≥ 1 ms, ${fmt(p.over5msPerSec, 1)} gaps ≥ 5 ms per second, longest ${fmt(p.longestMs, 1)} ms`).join('; ')}. Every server's tail latency here sits on top of these.`]),
    ...(run.repeat > 1 ? [`Relay and broadcast ran ${run.repeat} rounds of every server; for each, the round with the least foreign load on the server core is shown, all servers from that same round.`] : []),
    ...(run.repeat > 1 && Object.keys(run.capacity).length > 0 ? [`Capacity ran ${run.repeat} rounds of every server, each server's fastest shown (connect rates by round: ${run.targets.filter(t => run.capacity[t] !== undefined).map(t => `${names[t]} ${(run.capacity[t]?.roundRates ?? []).map(x => fmt(x)).join(', ')}`).join('; ')}).`] : []),
    '',
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map(r => `| ${r.join(' | ')} |`),
    ''
  ]
  const floor = run.floor
  if (floor !== undefined) {
    lines.push(`Connect floor in the same run (\`bench/baselines/ws-floor.ts\`: bare ws doing only the connect target's named work the cheap way — the token check, the project's list, \`peer-joined\` to its members, the welcome — without limits, metrics, heartbeat or logging): ${fmt(floor.connectPerSec)} peers/s${run.repeat > 1 ? ` (best of ${(floor.roundRates ?? []).map(x => fmt(x)).join(', ')})` : ''}, ${fmt(floor.serverUsPerPeer)} µs of server CPU per connection, ${ratio(floor.connectPerSec, cap.raw?.connectPerSec)} raw's rate. Ours: ${ratio(cap.ours?.connectPerSec, floor.connectPerSec)} the floor's rate, ${ratio(cap.ours?.serverUsPerPeer, floor.serverUsPerPeer)} its CPU per connection.`, '')
  }
  const cross = run.cross
  if (cross !== undefined) {
    if (cross.skipped !== undefined) lines.push(`Cross-node (A → Redis → B): skipped: ${cross.skipped}.`, '')
    else {
      const b = best(cross)
      lines.push(`Cross-node (senders on A, receivers on B, both nodes on core 0, Redis on core 1 with the generator): saturation ${fmt(cross.saturation)} msg/s, p50 ${fmt(b?.p50Ms, 2)} ms, p99 ${fmt(b?.p99Ms, 2)} ms there.`, '')
    }
  }
  lines.push('Steps (offered rate → delivered %, p50 / p99 / max ms, server CPU %, generator CPU %, foreign load on the server core %; ✗ = under 99 % or p99 ≥ 50 ms):', '')
  const stepTable = (title: string, reports: Array<[string, RateReport | undefined]>): void => {
    const present = reports.filter(([, r]) => r !== undefined && r.skipped === undefined && r.steps.length > 0)
    if (present.length === 0) return
    const rates = [...new Set(present.flatMap(([, r]) => r?.steps.map(s => s.rate) ?? []))].sort((a, b) => a - b)
    lines.push(`| ${title} | ${present.map(([n]) => n).join(' | ')} |`, `| --- | ${present.map(() => '---').join(' | ')} |`)
    for (const rate of rates) {
      const cells = present.map(([, r]) => {
        const s = r?.steps.find(x => x.rate === rate)
        return s === undefined ? '—' : `${fmt(s.deliveredPct, 1)} %, ${fmt(s.p50Ms, 2)} / ${fmt(s.p99Ms, 2)} / ${fmt(s.maxMs, 0)}, ${fmt(s.serverCpuPct)} %, ${fmt(s.generatorCpuPct)} %, ${fmt(s.foreignLoadPct)} %${s.ok ? '' : ' ✗'}`
      })
      lines.push(`| ${fmt(rate)} | ${cells.join(' | ')} |`)
    }
    lines.push('')
  }
  stepTable('relay msg/s', run.targets.map(t => [names[t], rl[t]]))
  stepTable('broadcasts/s', run.targets.map(t => [names[t], bc[t]]))
  if (cross !== undefined && cross.skipped === undefined) stepTable('cross-node msg/s', [['ours A→B', cross]])
  const errs = run.targets.flatMap(t => [cap[t], rl[t], bc[t]].flatMap(r => r?.errors ?? []).map(e => `${names[t]}: ${e}`))
  if (errs.length > 0) lines.push('Connection errors seen: ' + [...new Set(errs)].slice(0, 8).join('; '), '')
  return lines.join('\n')
}

const palette: Record<TargetKind, string> = { ours: '#d62728', raw: '#1f77b4', socketio: '#2ca02c', peerjs: '#9467bd' }

/** p99 (log scale) against offered rate for the directed relay, one line per server. */
export function svg (run: RunReport): string {
  const W = 720
  const H = 420
  const m = { l: 70, r: 150, t: 40, b: 50 }
  const series = run.targets.map(t => ({ t, steps: run.relay[t]?.steps ?? [] })).filter(s => s.steps.length > 0)
  const maxRate = Math.max(1, ...series.flatMap(s => s.steps.map(x => x.rate)))
  const lat = series.flatMap(s => s.steps.map(x => Math.max(0.01, x.p99Ms)))
  const lo = Math.log10(Math.min(0.1, ...lat))
  const hi = Math.log10(Math.max(100, ...lat))
  const x = (rate: number): number => m.l + (W - m.l - m.r) * rate / maxRate
  const y = (ms: number): number => H - m.b - (H - m.t - m.b) * (Math.log10(Math.max(0.01, ms)) - lo) / (hi - lo)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Directed relay: p99 latency vs offered rate</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">offered rate (messages/s)</text>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">p99 latency (ms, log)</text>`
  ]
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    const v = 10 ** e
    parts.push(`<line x1="${m.l}" y1="${y(v)}" x2="${W - m.r}" y2="${y(v)}" stroke="#ddd"/>`, `<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`)
  }
  parts.push(`<line x1="${m.l}" y1="${y(50)}" x2="${W - m.r}" y2="${y(50)}" stroke="#999" stroke-dasharray="4 3"/>`, `<text x="${W - m.r + 4}" y="${y(50) + 4}" fill="#666">50 ms</text>`)
  for (let i = 0; i <= 5; i++) {
    const r = maxRate * i / 5
    parts.push(`<text x="${x(r)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(r)}</text>`)
  }
  series.forEach((s, i) => {
    const pts = s.steps.map(p => `${x(p.rate).toFixed(1)},${y(p.p99Ms).toFixed(1)}`).join(' ')
    parts.push(`<polyline points="${pts}" fill="none" stroke="${palette[s.t]}" stroke-width="2"/>`)
    for (const p of s.steps) parts.push(`<circle cx="${x(p.rate).toFixed(1)}" cy="${y(p.p99Ms).toFixed(1)}" r="3" fill="${p.ok ? palette[s.t] : 'white'}" stroke="${palette[s.t]}"/>`)
    parts.push(`<text x="${W - m.r + 10}" y="${m.t + 20 + 18 * i}" fill="${palette[s.t]}">${names[s.t]}</text>`)
  })
  parts.push(`<text x="${W - m.r + 10}" y="${m.t + 20 + 18 * series.length + 10}" fill="#666" font-size="10">hollow: &lt;99 % or p99 ≥ 50 ms</text>`, '</svg>')
  return parts.join('\n')
}
