// Runs `npm run bench -- --quick` end to end and checks only that every scenario delivered its
// messages: speed is the bench's business, not CI's (a shared runner's timings prove nothing).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { RunReport } from '../bench/lib/report.ts'

t.test('the quick bench delivers every message in every scenario', { timeout: 115_000 }, async t => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const pinned = existsSync('/usr/bin/taskset')
  const cmd = pinned ? 'taskset' : process.execPath
  const args = [...(pinned ? ['-c', '1', process.execPath] : []), '--import', 'tsx', 'bench/run.ts', '--quick', '--out', out]
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  // The bench kills what it started on its own errors; this is for the test's own timeout.
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGTERM') })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20000) })
  child.stdout.resume()
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0, 'the bench exits 0')
  if (code !== 0) t.comment(stderr)

  const run = JSON.parse(readFileSync(join(out, 'quick.json'), 'utf8')) as RunReport
  for (const file of ['quick.md', 'quick-p99.svg']) t.ok(existsSync(join(out, file)), `${file} written`)
  t.same(run.targets, ['ours', 'raw'])
  for (const target of run.targets) {
    const cap = run.capacity[target]
    t.equal(cap?.connected, cap?.peers, `${target}: every capacity peer connected`)
    for (const scenario of ['relay', 'broadcast'] as const) {
      const r = run[scenario][target]
      t.ok(r !== undefined && r.steps.length > 0, `${target} ${scenario}: ran`)
      for (const s of r?.steps ?? []) {
        t.ok(s.sent > 0, `${target} ${scenario} ${s.rate}/s: sent`)
        t.equal(s.received, s.expected, `${target} ${scenario} ${s.rate}/s: all ${s.expected} delivered`)
      }
    }
  }
  t.equal(run.floor?.connected, run.floor?.peers, 'connect floor: every capacity peer connected')
  const cross = run.cross
  t.ok(cross !== undefined, 'cross-node ran or said why not')
  if (cross?.skipped !== undefined) {
    t.equal(cross.skipped, 'cluster mode unavailable')
  } else {
    // Senders and receivers join concurrently: this is where the bench once found a peer that
    // joined on B while its project's first peer joined on A staying unknown to A.
    for (const s of cross?.steps ?? []) {
      t.equal(s.received, s.expected, `cross-node ${s.rate}/s: all ${s.expected} delivered`)
      t.equal(s.errors, 0, `cross-node ${s.rate}/s: no error frames`)
    }
  }
})
