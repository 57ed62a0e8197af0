// The bench's servers end with the bench, however it ends: a server under test left running
// would load the machine for every later run and test.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import t from 'tap'

/** Running, not a zombie waiting for whoever inherited it to reap it. */
function running (pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}

async function gone (pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (!running(pid)) return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return false
}

// A bench that starts a server, says its pid, and waits.
const bench = `
import { startTarget } from './bench/lib/procs.ts'
const server = await startTarget('raw')
process.stdout.write(server.pid + '\\n')
setInterval(() => {}, 1000)
`

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  t.test(`a server under test ends when its bench gets ${signal}`, { skip: process.platform !== 'linux' && 'reads /proc' }, async t => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', bench], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    const [line] = await once(createInterface({ input: child.stdout }), 'line') as [string]
    const pid = Number(line)
    t.teardown(() => { try { process.kill(pid, 'SIGKILL') } catch {} })
    t.ok(pid > 0 && running(pid), 'the server runs')
    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
    t.ok(await gone(pid), 'the server went with it')
  })
}

t.test('bench:ab stopped by SIGTERM mid-run removes its worktree', async t => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/ab.ts', '--base', 'HEAD', '--rounds', '50', '--peers', '2000'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  // Its table's header: both servers run and the rounds begin.
  for await (const line of createInterface({ input: child.stdout })) if (line.startsWith('CPU per connection')) break
  child.stdout.resume()
  const dir = /checked out in (\S+)/.exec(stderr)?.[1]
  t.ok(dir !== undefined && existsSync(dir), 'its worktree is there while it runs')
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  t.same(await exited, [130, null], 'it exits 130')
  t.notOk(execFileSync('git', ['worktree', 'list'], { encoding: 'utf8' }).includes(dir ?? '\0'), 'its worktree is gone from git')
  t.notOk(existsSync(dir ?? '\0'), 'and from the disk')
})
