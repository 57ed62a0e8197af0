// `npm run bench:ab -- --base <git rev | floor | raw> [--rounds 6] [--peers 19800]`: server CPU
// per connection of this checkout against another revision, against bench/baselines/ws-floor.ts
// (bare ws doing only the connect target's named work) or against the raw ws relay, both
// servers on the server core at the same time
// and the capacity scenario's connections dealt between them a project of 10 at a time. On a
// shared machine the same build's CPU per connection moves by half or more between runs minutes
// apart; two servers measured side by side share whatever the machine does, so their ratio holds
// still (one build against itself: 0.95-1.09 per round). Connect path only: the rest of the
// bench's scenarios compare servers one after another (`npm run bench`).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from './lib/pool.ts'
import { cpuSeconds, killAll, live, root, startTarget, stopOnSignals } from './lib/procs.ts'
import type { PeerSpec } from './lib/protocols.ts'
import { floorScript, idlePeers, makePlan, oursEnv } from './scenarios.ts'

const args = process.argv.slice(2)
function option (name: string): string | undefined {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const baseRev = option('--base')
if (baseRev === undefined) throw new Error('--base <git rev | floor | raw>: what to compare this checkout with')
const baselines: Record<string, string> = { floor: floorScript, raw: 'bench/baselines/raw-ws.ts' }
const baseline = baselines[baseRev]
const rounds = Number(option('--rounds') ?? '6')
// Even, so the two servers get as many projects each.
const peers = Math.round(Number(option('--peers') ?? '19800') / 20) * 20
const plan = makePlan(false)

const git = (...a: string[]): string => execFileSync('git', a, { cwd: root, encoding: 'utf8' }).trim()
const baseDir = mkdtempSync(join(tmpdir(), 'registry-ab-'))
let key = 0
/** The capacity scenario's peers in projects of 10; even projects go to the base (A), odd ones to this checkout (B). */
function dealt (count: number, prefix: string): PeerSpec[] {
  const peers = idlePeers(count, key, prefix).map((p, i) => ({ ...p, node: Math.floor(i / 10) % 2 === 0 ? 'A' as const : 'B' as const }))
  key += count
  return peers
}
function median (xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

function removeWorktree (): void {
  if (baseline === undefined) git('worktree', 'remove', '--force', baseDir)
  rmSync(baseDir, { recursive: true, force: true })
}
stopOnSignals(removeWorktree)

async function main (): Promise<void> {
  const rev = baseline ?? git('rev-parse', '--short', baseRev as string)
  if (baseline === undefined) {
    git('worktree', 'add', '--detach', '--force', baseDir, rev)
    symlinkSync(join(root, 'node_modules'), join(baseDir, 'node_modules'))
    process.stderr.write(`bench:ab: ${rev} checked out in ${baseDir}\n`)
  }
  const pool = new Pool(2)
  // From here on the worktree goes, whatever fails (a server that does not start included).
  try {
    // A baseline gets our peers' requests as they are (a token it may ignore, the same path).
    const base = baseline !== undefined
      ? await startTarget('raw', { script: baseline })
      : await startTarget('ours', { env: oursEnv, checkout: baseDir })
    const ours = await startTarget('ours', { env: oursEnv })
    const ports = { ports: { A: base.port, B: ours.port }, sourceAddresses: plan.sourceAddresses, concurrency: plan.concurrency, payloadBytes: plan.payloadBytes }
    // Both compiled before anything is timed.
    await pool.setup({ kind: 'ours', ...ports }, dealt(Math.min(4000, peers), 'warm'))
    await pool.teardown()
    const ratios: number[] = []
    process.stdout.write(`CPU per connection, ${peers / 2} connections to each server per round; base ${rev}, this checkout ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') === '' ? '' : ' with uncommitted changes'}\n\n| round | base (µs) | this (µs) | this / base |\n| --- | --- | --- | --- |\n`)
    for (let r = 1; r <= rounds; r++) {
      await pool.prepare('ours', dealt(peers, `r${r}-`))
      const a0 = cpuSeconds(base.pid)
      const b0 = cpuSeconds(ours.pid)
      const setup = await pool.connect(ports)
      const a = (cpuSeconds(base.pid) - a0) * 1e6 / (peers / 2)
      const b = (cpuSeconds(ours.pid) - b0) * 1e6 / (peers / 2)
      if (setup.failed > 0) throw new Error(`round ${r}: ${setup.failed} peers failed to connect: ${setup.errors.join('; ')}`)
      ratios.push(b / a)
      process.stdout.write(`| ${r} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(2)} |\n`)
      await pool.teardown()
    }
    process.stdout.write(`\nthis / base: median ${median(ratios).toFixed(2)}, range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}\n`)
  } finally {
    pool.close()
    for (const server of [...live]) await server.stop()
    removeWorktree()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  killAll()
  process.exitCode = 1
})
