// Servers under test as child processes pinned to the server core, and what the bench reads
// from them: CPU from /proc/<pid>/stat, memory from bench/probe.ts over IPC.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TargetKind } from './protocols.ts'

export const root = fileURLToPath(new URL('../..', import.meta.url))
const hasTaskset = existsSync('/usr/bin/taskset')
export const serverCore = '0'
/**
 * Redis is infrastructure, not the server under test: it runs on the generator's core, so the
 * cross-node scenario gives both registry nodes together the one core a single node gets,
 * as a deployment gives Redis its own machine.
 */
export const infraCore = '1'

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  return typeof address === 'object' && address !== null ? address.port : 0
}

async function waitForPort (port: number, child: ChildProcess, timeoutMs = 30000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before listening`)
    const ok = await new Promise<boolean>(resolve => {
      const s = connect({ host: '127.0.0.1', port })
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`)
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // After the command: state is field 3 of proc(5); utime and stime are 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

/** Busy and total jiffies per core from /proc/stat, to see load the bench did not start. */
export function coreTimes (): Array<{ busy: number, total: number }> {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n').filter(l => /^cpu\d+ /.test(l)).map(l => {
      const v = l.trim().split(/\s+/).slice(1).map(Number)
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
      // idle and iowait are the only not-busy columns.
      return { busy: total - v[3] - v[4], total }
    })
  } catch {
    return []
  }
}

/** Percent busy of `core` between two coreTimes() readings. */
export function coreBusyPct (before: ReturnType<typeof coreTimes>, after: ReturnType<typeof coreTimes>, core: number): number {
  const a = before[core]
  const b = after[core]
  if (a === undefined || b === undefined || b.total === a.total) return 0
  return 100 * (b.busy - a.busy) / (b.total - a.total)
}

export interface StallProbe {
  core: number
  /** Share of the probe's time spent in gaps of 1 ms or more (%). */
  lostPct: number
  /** Gaps of 5 ms or more, per second. */
  over5msPerSec: number
  longestMs: number
}

/**
 * Measures how often the machine takes each core away from a busy process (bench/stall-probe.ts),
 * all cores at once, before any scenario runs.
 */
export async function stallProbes (ms: number): Promise<StallProbe[]> {
  const cores = coreTimes().map((_c, i) => i)
  return await Promise.all(cores.map(async core => {
    const args = ['--import', 'tsx', 'bench/stall-probe.ts', String(ms)]
    const [cmd, argv] = hasTaskset ? ['taskset', ['-c', String(core), process.execPath, ...args]] : [process.execPath, args]
    const child = spawn(cmd, argv, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
    await once(child, 'exit')
    const r = JSON.parse(out) as { ms: number, gaps: number[] }
    return {
      core,
      lostPct: 100 * r.gaps.reduce((a, g) => a + g, 0) / r.ms,
      over5msPerSec: r.gaps.filter(g => g >= 5).length / (r.ms / 1000),
      longestMs: Math.max(0, ...r.gaps)
    }
  }))
}

export interface Mem { rss: number, heapUsed: number, heapTotal: number, external: number }

export interface Running {
  kind: TargetKind | 'redis'
  pid: number
  port: number
  child: ChildProcess
  stderr: () => string
  mem: () => Promise<Mem>
  stop: () => Promise<void>
}

const scripts: Record<TargetKind, string> = {
  ours: 'server.ts',
  raw: 'bench/baselines/raw-ws.ts',
  socketio: 'bench/baselines/socketio.ts',
  peerjs: 'bench/baselines/peerjs.ts'
}

export interface StartOptions {
  env?: Record<string, string>
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[]
  /** The server's entry file instead of the kind's own, relative to its checkout. */
  script?: string
  /** The checkout the server comes from (another revision's worktree in bench/ab.ts); this one by default. */
  checkout?: string
}

/** Where a checkout's compiled JavaScript goes (git-ignored). */
const buildDir = '.bench-build'
const built = new Set<string>()

/**
 * Servers run as production runs them (`npm start`): JavaScript compiled by tsc, no TypeScript
 * loader, the baselines too, so every target pays the same for its language. The whole
 * checkout is compiled, once per bench process, with its own tsconfig, so an older revision
 * builds as it did.
 */
export function compiled (checkout: string, script: string): string {
  if (!built.has(checkout)) {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const args = [tsc, '-p', join(checkout, 'tsconfig.json'), '--noEmit', 'false', '--outDir', join(checkout, buildDir), '--rootDir', checkout,
      '--declaration', 'false', '--sourceMap', 'false', '--incremental', 'false']
    try {
      execFileSync(process.execPath, args, { cwd: checkout, stdio: 'pipe' })
    } catch (err) {
      throw new Error(`tsc could not build ${checkout}:\n${String((err as { stdout?: Buffer }).stdout ?? err)}`)
    }
    built.add(checkout)
  }
  return join(checkout, buildDir, script.replace(/\.ts$/, '.js'))
}

/**
 * Node flags for every server under test (e.g. --trace-gc), and where their stdout goes: set
 * by `--server-flags` and `--server-log` on the command line, for looking into a run.
 */
export const serverExtras: { flags: string[], logDir: string | undefined } = { flags: [], logDir: undefined }
let started = 0

/** Every process the bench started and has not stopped yet, so a failure can still end them. */
export const live = new Set<Running>()

function pinned (cmd: string, args: string[], core = serverCore): [string, string[]] {
  return hasTaskset ? ['taskset', ['-c', core, cmd, ...args]] : [cmd, args]
}

export async function startTarget (kind: TargetKind, opts: StartOptions = {}): Promise<Running> {
  const port = await freePort()
  const entry = compiled(opts.checkout ?? root, opts.script ?? scripts[kind])
  const [cmd, args] = pinned(process.execPath, [
    '--expose-gc', '--import', compiled(root, 'bench/probe.ts'), ...serverExtras.flags, ...(opts.nodeFlags ?? []), entry
  ])
  const log = serverExtras.logDir === undefined ? 'ignore' : openSync(join(serverExtras.logDir, `${++started}-${kind}.log`), 'w')
  const child = spawn(cmd, args, {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...opts.env },
    stdio: ['ignore', log, 'pipe', 'ipc']
  })
  if (typeof log === 'number') closeSync(log)
  return await track(kind, port, child)
}

export async function startRedis (): Promise<Running> {
  const port = await freePort()
  const [cmd, args] = pinned('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '1000'], infraCore)
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  return await track('redis', port, child)
}

async function track (kind: Running['kind'], port: number, child: ChildProcess): Promise<Running> {
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000) })
  const running: Running = {
    kind,
    pid: child.pid ?? 0,
    port,
    child,
    stderr: () => err,
    mem: async () => {
      child.send('mem')
      const [reply] = await once(child, 'message') as [{ mem: Mem }]
      return reply.mem
    },
    stop: async () => {
      live.delete(running)
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 8000)
      await exited
      clearTimeout(timer)
    }
  }
  live.add(running)
  try {
    await waitForPort(port, child)
  } catch (e) {
    await running.stop()
    throw new Error(`${kind}: ${(e as Error).message}\n${err}`)
  }
  return running
}

/** Ends everything still running (on errors and signals): by pid, never by name. */
export function killAll (): void {
  for (const r of live) {
    try { r.child.kill('SIGKILL') } catch {}
  }
  live.clear()
}

/**
 * Every bench entry point calls this first: stopped by a signal (Ctrl-C, a test's teardown),
 * it ends what it started, runs `cleanup` (a worktree to remove), and exits. Without it the
 * servers it had started outlived it (a test's SIGTERM to `bench:ab` left a floor server).
 */
export function stopOnSignals (cleanup?: () => void): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killAll()
      try { cleanup?.() } catch {}
      process.exit(130)
    })
  }
}
