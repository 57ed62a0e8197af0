// `npm run profile [-- --rate 20000 --seconds 10 --label before] [--connect] [--target raw]`: the directed-relay
// scenario (or, with --connect, the capacity scenario's connection phase) against our server
// started with --cpu-prof, then the profile's top frames by self time.
// The .cpuprofile lands in bench/results/ (open it in Chrome DevTools or speedscope).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { Pool } from './lib/pool.ts'
import { killAll, root, startTarget, stopOnSignals } from './lib/procs.ts'
import { capacityPeers, makePlan, oursEnv, relayPeers, warmUpPeers } from './scenarios.ts'
import type { CpuProfile } from '../services/profiler.ts'

stopOnSignals()
const args = process.argv.slice(2)
function option (name: string, fallback: string): string {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const rate = Number(option('--rate', '20000'))
const seconds = Number(option('--seconds', '10'))
const connectOnly = args.includes('--connect')
// The raw ws relay profiled the same way shows which costs are Node's and ws's, not ours.
const target = option('--target', 'ours') as 'ours' | 'raw'
if (target !== 'ours' && target !== 'raw') throw new Error('--target: ours or raw')
const label = option('--label', connectOnly ? 'connect' : 'relay')
const top = Number(option('--top', '15'))
const outDir = join(root, 'bench', 'results')

interface Frame { name: string, where: string, selfMs: number, selfPct: number }

/** The server's non-idle time inside the window, set by topFrames. */
let busyMs = 0
/** Self time by layer (a package, node's own modules, the registry's folders), set by topFrames. */
const layers = new Map<string, number>()

/** Which layer a frame's file belongs to: the package, `node:` internals, native, or ours. */
function layerOf (file: string, name: string): string {
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(file)
  if (pkg !== null) return pkg[1]
  if (file.startsWith('node:')) return 'node (JS)'
  if (file === '') return name.startsWith('(') ? name : 'native (syscalls, C++)'
  return `registry ${file.split('/')[0]}/`
}

/** Monotonic clock in µs: the clock V8 stamps profile samples with (CLOCK_MONOTONIC on Linux). */
function monoUs (): number {
  return Number(process.hrtime.bigint() / 1000n)
}

/**
 * Self time per function (samples × their time deltas) inside [fromUs, toUs] only, so start-up
 * and the connection phase do not crowd the relay's frames out. Heaviest first.
 */
function topFrames (profile: CpuProfile, limit: number, fromUs: number, toUs: number): Frame[] {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  let at = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0
    if (at < fromUs || at > toUs) continue
    self.set(samples[i], (self.get(samples[i]) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const idle = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0)
  const agg = new Map<string, Frame>()
  for (const [id, us] of self) {
    const f = byId.get(id)?.callFrame
    if (f === undefined || f.functionName === '(idle)') continue
    // Servers run compiled (bench/lib/procs.ts): name our files by their source folders.
    const file = f.url === '' ? '' : relative(root, f.url.replace(/^file:\/\//, '')).replace(/^\.bench-build\//, '')
    const layer = layerOf(f.url.startsWith('node:') ? f.url : file, f.functionName)
    layers.set(layer, (layers.get(layer) ?? 0) + us / 1000)
    const where = file === '' ? '' : `${file}:${f.lineNumber + 1}`
    const name = f.functionName === '' ? '(anonymous)' : f.functionName
    const key = `${name} ${where}`
    const entry = agg.get(key) ?? { name, where, selfMs: 0, selfPct: 0 }
    entry.selfMs += us / 1000
    agg.set(key, entry)
  }
  // Percent of busy time: idle samples say nothing about where the cost is.
  const busy = Math.max(1, total - idle)
  busyMs = busy / 1000
  return [...agg.values()].map(f => ({ ...f, selfPct: 100 * f.selfMs * 1000 / busy })).sort((a, b) => b.selfMs - a.selfMs).slice(0, limit)
}

async function main (): Promise<void> {
  const plan = makePlan(false)
  const window = { from: 0, to: 0 }
  let delivered = 0
  const profDir = mkdtempSync(join(tmpdir(), 'registry-prof-'))
  const server = await startTarget(target, { env: target === 'ours' ? oursEnv : {}, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] })
  const pool = new Pool(2)
  try {
    const base = { ports: { A: server.port }, sourceAddresses: plan.sourceAddresses, concurrency: plan.concurrency, payloadBytes: plan.payloadBytes }
    if (connectOnly) {
      // Warmed as in the bench's capacity scenario: the profile is of a compiled connect path.
      await pool.setup({ kind: target, ...base }, warmUpPeers(plan))
      await pool.teardown()
      await pool.prepare(target, capacityPeers(plan))
      window.from = monoUs()
      const setup = await pool.connect(base)
      window.to = monoUs()
      delivered = setup.connected
      process.stderr.write(`profile: ${setup.connected} peers connected at ${(setup.connected / setup.ms * 1000).toFixed(0)}/s\n`)
    } else {
      const setup = await pool.setup({ kind: target, ...base }, relayPeers(plan))
      process.stderr.write(`profile: ${setup.connected} peers connected; relaying ${rate} msg/s for ${seconds} s\n`)
      window.from = monoUs()
      const [a, b] = await pool.step({ step: 1, kind: 'signal', rate, durationMs: seconds * 1000, drainMs: 2000 })
      window.to = monoUs()
      delivered = a.received + b.received
      process.stderr.write(`profile: ${delivered} of ${a.expected + b.expected} delivered\n`)
    }
    await pool.teardown()
  } finally {
    pool.close()
    // SIGTERM: a graceful exit is what makes --cpu-prof write the profile.
    await server.stop()
    killAll()
  }
  const file = readdirSync(profDir).find(f => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error('the server wrote no .cpuprofile (did it exit gracefully?)')
  mkdirSync(outDir, { recursive: true })
  const dest = join(outDir, `${label}.cpuprofile`)
  // A copy across file systems (/tmp may be another mount), then the temp dir goes.
  writeFileSync(dest, readFileSync(join(profDir, file)))
  writeFileSync(join(outDir, `${label}.window.json`), JSON.stringify({ fromUs: window.from, toUs: window.to, count: delivered }))
  rmSync(profDir, { recursive: true, force: true })
  const frames = topFrames(JSON.parse(readFileSync(dest, 'utf8')) as CpuProfile, top, window.from, window.to)
  if (frames.length === 0) throw new Error('no samples fell inside the relay window')
  const what = connectOnly ? `the connection of ${delivered} peers in projects of 10` : `the relay only, ${rate} msg/s for ${seconds} s`
  const lines = [
    `Top ${top} frames by self time (% of the server's non-idle samples during ${what}), label ${label}.`,
    `Server busy ${busyMs.toFixed(0)} ms in the ${((window.to - window.from) / 1e6).toFixed(1)} s window (${(busyMs / (window.to - window.from) * 100000).toFixed(1)} % of its core, ${(busyMs * 1000 / Math.max(1, delivered)).toFixed(2)} µs per ${connectOnly ? 'connection' : 'relayed frame'}).`,
    '',
    '| # | function | where | self ms | self % |',
    '| --- | --- | --- | --- | --- |',
    ...frames.map((f, i) => `| ${i + 1} | ${f.name} | ${f.where} | ${f.selfMs.toFixed(0)} | ${f.selfPct.toFixed(1)} |`),
    '',
    'By layer:',
    '',
    '| layer | self ms | self % |',
    '| --- | --- | --- |',
    ...[...layers].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([l, ms]) => `| ${l} | ${ms.toFixed(0)} | ${(100 * ms / busyMs).toFixed(1)} |`)
  ]
  writeFileSync(join(outDir, `profile-${label}.md`), lines.join('\n') + '\n')
  process.stdout.write(lines.join('\n') + `\n\nprofile: ${relative(root, dest)}\n`)
}

try {
  await main()
} catch (err) {
  killAll()
  process.stderr.write(`profile failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
}
