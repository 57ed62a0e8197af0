// `npm run bench:ab` end to end, small: it runs and reports, and cleans up its worktree. Its own
// file, so the quick bench's file and this one each stay inside tap's per-file timeout.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import t, { type Test } from 'tap'

async function runAb (t: Test, base: string): Promise<{ stdout: string, stderr: string }> {
  const pinned = existsSync('/usr/bin/taskset')
  const cmd = pinned ? 'taskset' : process.execPath
  const args = [...(pinned ? ['-c', '1', process.execPath] : []), '--import', 'tsx', 'bench/ab.ts', '--base', base, '--rounds', '1', '--peers', '200']
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGTERM') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20000) })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0, 'exits 0')
  if (code !== 0) t.comment(stderr)
  t.match(stdout, /\| 1 \| \d+ \| \d+ \| \d+\.\d\d \|/, 'a round with both servers\' CPU per connection')
  t.match(stdout, /this \/ base: median \d+\.\d\d/, 'and the median ratio')
  return { stdout, stderr }
}

/** The worktree bench:ab says it made (other runs' worktrees may come and go meanwhile). */
function worktreeOf (stderr: string): string | undefined {
  return /checked out in (\S+)/.exec(stderr)?.[1]
}

t.test('bench:ab runs two revisions side by side and removes its worktree', { timeout: 60_000 }, async t => {
  const dir = worktreeOf((await runAb(t, 'HEAD')).stderr)
  t.ok(dir, 'it says where it checked the revision out')
  const worktrees = execFileSync('git', ['worktree', 'list'], { encoding: 'utf8' })
  t.notOk(worktrees.includes(dir ?? '\0'), 'its worktree is gone from git')
  t.notOk(existsSync(dir ?? '\0'), 'and from the disk')
})

t.test('bench:ab compares with the floor of the connect target\'s work', { timeout: 60_000 }, async t => {
  t.match((await runAb(t, 'floor')).stdout, /base bench\/baselines\/ws-floor\.ts/)
})
