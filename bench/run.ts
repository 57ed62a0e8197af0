// `npm run bench [-- --quick] [--baselines socketio,peerjs] [--scenarios capacity,relay,broadcast,cross]
//   [--server-flags "--trace-gc"] [--server-log DIR] [--generator-flags "--cpu-prof"] [--relay-rates 5000,10000]`
// Starts each server under test pinned to core 0, drives it from generator processes pinned
// to core 1 with real WebSocket peers on loopback, and writes bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { Pool } from './lib/pool.ts'
import { killAll, root, serverExtras, stallProbes, stopOnSignals } from './lib/procs.ts'
import type { TargetKind } from './lib/protocols.ts'
import { markdown, svg, type RunReport } from './lib/report.ts'
import { broadcast, capacity, crossNode, floorScript, makePlan, relay, type CapacityReport, type RateReport } from './scenarios.ts'

const args = process.argv.slice(2)
function option (name: string): string | undefined {
  const i = args.indexOf(name)
  if (i >= 0) return args[i + 1]
  return args.find(a => a.startsWith(`${name}=`))?.slice(name.length + 1)
}

const quick = args.includes('--quick')
const extra = (option('--baselines') ?? '').split(',').filter(s => s !== '')
for (const b of extra) if (b !== 'socketio' && b !== 'peerjs') throw new Error(`--baselines: unknown ${b} (socketio, peerjs)`)
const targets: TargetKind[] = ['ours', 'raw', ...extra as TargetKind[]]
const scenarios = new Set((option('--scenarios') ?? 'capacity,relay,broadcast,cross').split(','))
const outDir = option('--out') ?? join(root, 'bench', 'results')
// On a machine others use too, each rate scenario can run N rounds (every target per round);
// the round whose steps saw the least foreign load on the server core is the one reported.
const repeat = Math.max(1, Number(option('--repeat') ?? '1'))
const plan = makePlan(quick)
const relayRates = option('--relay-rates')
if (relayRates !== undefined) plan.relayRates = relayRates.split(',').map(Number)
serverExtras.flags = (option('--server-flags') ?? '').split(' ').filter(s => s !== '')
serverExtras.logDir = option('--server-log')
if (serverExtras.logDir !== undefined) mkdirSync(serverExtras.logDir, { recursive: true })

// A hard stop, so a wedged run can never keep load on the machine.
const deadline = setTimeout(() => {
  process.stderr.write('bench: time limit reached, stopping\n')
  killAll()
  process.exit(2)
}, (quick ? 3 : 20) * 60_000)
deadline.unref()
stopOnSignals()

/** Mean load other processes put on the server core during a run's steps. */
function foreignLoad (r: RateReport): number {
  return r.steps.length === 0 ? Infinity : r.steps.reduce((a, s) => a + s.foreignLoadPct, 0) / r.steps.length
}

type Round = Partial<Record<TargetKind, RateReport>>

/** The faster of a server's capacity rounds so far, carrying every round's rate. */
function fastest (kept: CapacityReport | undefined, r: CapacityReport): CapacityReport {
  r.roundRates = [...(kept?.roundRates ?? []), r.connectPerSec]
  if (kept === undefined || r.connectPerSec > kept.connectPerSec) return r
  kept.roundRates = r.roundRates
  return kept
}

/**
 * The round whose servers saw, together, the least foreign load; every server's figures come
 * from that one round, so a ratio compares runs minutes apart, not a round apart (the
 * machine's speed drifts over a long run).
 */
function cleanestRound (rounds: Round[]): Round {
  let best: Round = {}
  let bestLoad = Infinity
  for (const round of rounds) {
    // A round cut short by a failure never wins over a whole one.
    if (Object.keys(round).length < Object.keys(best).length) continue
    const loads = Object.values(round).filter(r => r !== undefined && r.skipped === undefined).map(r => foreignLoad(r))
    const load = loads.length === 0 ? Infinity : loads.reduce((a, b) => a + b, 0) / loads.length
    if (Object.keys(round).length > Object.keys(best).length || load < bestLoad) {
      best = round
      bestLoad = load
    }
  }
  for (const r of Object.values(best)) if (r !== undefined) r.runs = rounds.length
  return best
}

function log (msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

const started = Date.now()
// First, before any process of the bench starts: how much the machine itself interrupts a busy core.
log('machine: stall probe on every core')
const stalls = await stallProbes(quick ? 1000 : 5000)
for (const p of stalls) log(`  core ${p.core}: ${p.lostPct.toFixed(1)} % of a busy loop lost in gaps ≥ 1 ms, ${p.over5msPerSec.toFixed(1)} gaps ≥ 5 ms per second, longest ${p.longestMs.toFixed(1)} ms`)
const pool = new Pool(2, (option('--generator-flags') ?? '').split(' ').filter(s => s !== ''))
const run: RunReport = {
  date: new Date().toISOString(),
  command: `npm run bench${args.length > 0 ? ' -- ' + args.join(' ') : ''}`,
  repeat,
  quick,
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, stalls },
  targets,
  capacity: {},
  relay: {},
  broadcast: {},
  durationSec: 0
}

try {
  // Scenario by scenario, each target in turn: whatever else loads the machine meanwhile
  // then spreads over the targets instead of skewing one target's every figure.
  // Connect rates swing with the machine (a busy neighbour slows every connection alike) more
  // than relay steps do: with --repeat each server connects once per round, and its fastest
  // round, the least disturbed, is the one reported.
  for (let round = 0; round < repeat && scenarios.has('capacity'); round++) {
    for (const t of targets) {
      log(`capacity: ${t}, ${plan.capacityPeers} idle peers${repeat > 1 ? `, round ${round + 1} of ${repeat}` : ''}`)
      const r = await capacity(pool, t, plan)
      run.capacity[t] = fastest(run.capacity[t], r)
      log(`  ${r.connected} connected (${r.failed} failed) at ${r.connectPerSec.toFixed(0)}/s, server ${r.serverUsPerPeer.toFixed(0)} µs per connection; ${r.rssPerPeerKB.toFixed(1)} KB RSS, ${r.heapPerPeerKB.toFixed(1)} KB heap per peer`)
    }
    log(`capacity: ws floor (${floorScript}), ${plan.capacityPeers} idle peers${repeat > 1 ? `, round ${round + 1} of ${repeat}` : ''}`)
    const f = await capacity(pool, 'ours', plan, floorScript)
    run.floor = fastest(run.floor, f)
    log(`  ${f.connected} connected (${f.failed} failed) at ${f.connectPerSec.toFixed(0)}/s, server ${f.serverUsPerPeer.toFixed(0)} µs per connection`)
  }
  const relayRounds: Round[] = []
  const broadcastRounds: Round[] = []
  for (let round = 0; round < repeat; round++) {
    const relayRound: Round = {}
    const broadcastRound: Round = {}
    relayRounds.push(relayRound)
    broadcastRounds.push(broadcastRound)
    for (const t of targets) {
      if (scenarios.has('relay')) {
        log(`relay: ${t}, ${plan.relayPeers} peers, ${plan.relayPairs} pairs${repeat > 1 ? `, round ${round + 1} of ${repeat}` : ''}`)
        const r = await relay(pool, t, plan)
        relayRound[t] = r
        run.relay = cleanestRound(relayRounds)
        for (const s of r.steps) log(`  ${s.rate}/s: ${s.deliveredPct.toFixed(1)} % p50 ${s.p50Ms.toFixed(2)} p99 ${s.p99Ms.toFixed(2)} max ${s.maxMs.toFixed(1)} ms, server ${s.serverCpuPct.toFixed(0)} %, generator ${s.generatorCpuPct.toFixed(0)} %, foreign load on core 0 ${s.foreignLoadPct.toFixed(0)} %`)
      }
    }
    for (const t of targets) {
      if (scenarios.has('broadcast')) {
        log(`broadcast: ${t}, ${plan.broadcastProjects} × ${plan.broadcastPeersPerProject}${repeat > 1 ? `, round ${round + 1} of ${repeat}` : ''}`)
        const r = await broadcast(pool, t, plan)
        broadcastRound[t] = r
        run.broadcast = cleanestRound(broadcastRounds)
        if (r.skipped !== undefined) log(`  skipped: ${r.skipped}`)
        for (const s of r.steps) log(`  ${s.rate}/s → ${s.deliveriesPerSec.toFixed(0)} deliveries/s: ${s.deliveredPct.toFixed(1)} % p99 ${s.p99Ms.toFixed(2)} ms, server ${s.serverCpuPct.toFixed(0)} %, generator ${s.generatorCpuPct.toFixed(0)} %, foreign load on core 0 ${s.foreignLoadPct.toFixed(0)} %`)
      }
    }
  }
  if (scenarios.has('cross')) {
    log(`cross-node: ${plan.crossPairs} pairs, A → Redis → B`)
    const r = run.cross = await crossNode(pool, plan)
    if (r.skipped !== undefined) log(`  skipped: ${r.skipped}`)
    for (const s of r.steps) log(`  ${s.rate}/s: ${s.deliveredPct.toFixed(1)} % p50 ${s.p50Ms.toFixed(2)} p99 ${s.p99Ms.toFixed(2)} ms, busiest process ${s.serverCpuPct.toFixed(0)} %, ${s.errors} error frames`)
  }
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
} finally {
  pool.close()
  killAll()
}

run.durationSec = (Date.now() - started) / 1000
mkdirSync(outDir, { recursive: true })
const stem = quick ? 'quick' : 'latest'
const md = markdown(run)
writeFileSync(join(outDir, `${stem}.md`), md + '\n')
writeFileSync(join(outDir, `${stem}.json`), JSON.stringify(run, null, 2) + '\n')
writeFileSync(join(outDir, `${stem}-p99.svg`), svg(run) + '\n')
process.stdout.write(md + '\n')
log(`wrote ${join(outDir, stem)}.{md,json} and ${stem}-p99.svg in ${run.durationSec.toFixed(0)} s`)
