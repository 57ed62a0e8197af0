// Spawns the standalone server (`node --import tsx server.ts`) on a free port and follows its
// output line by line, so tests await log lines, never durations (STYLE.md §9).
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

interface Teardown { teardown: (fn: () => unknown) => void }

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface Spawned {
  child: ChildProcess
  port: number
  /** Every stdout and stderr line so far. */
  lines: string[]
  /** Resolves with the first line (past or future) matching `test`. */
  line: (test: (line: string) => boolean, timeoutMs?: number) => Promise<string>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/** A port nobody listens on now (the server binds it a moment later). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

/** `argv`: node's arguments, the source entry by default; test/server-build.test.ts runs dist/. */
export async function spawnServer (t: Teardown, env: Record<string, string>, argv = ['--import', 'tsx', 'server.ts']): Promise<Spawned> {
  const port = Number(env.PORT ?? await freePort())
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(JWT_|REDIS_|NODE_ENV|ALLOWED_ORIGINS|LOG_LEVEL|MAX_|RATE_|HEARTBEAT|PRESENCE|NODE_ID|HOST|PORT|ADMIN_|DEMO)/.test(k)))
  const child = spawn(process.execPath, argv, {
    cwd: root,
    env: { ...clean, PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const lines: string[] = []
  const waiters: Array<() => void> = []
  const follow = (stream: NodeJS.ReadableStream | null): void => {
    let rest = ''
    stream?.on('data', (d: Buffer) => {
      rest += d.toString()
      const parts = rest.split('\n')
      rest = parts.pop() ?? ''
      lines.push(...parts.filter(l => l !== ''))
      for (const w of waiters.splice(0)) w()
    })
  }
  follow(child.stdout)
  follow(child.stderr)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => { for (const w of waiters.splice(0)) w(); resolve({ code, signal }) })
  })
  const line = async (test: (line: string) => boolean, timeoutMs = 15000): Promise<string> => {
    const deadline = Date.now() + timeoutMs
    let seen = 0
    for (;;) {
      for (; seen < lines.length; seen++) if (test(lines[seen])) return lines[seen]
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited; output:\n${lines.join('\n')}`)
      if (Date.now() > deadline) throw new Error(`no matching line within ${timeoutMs} ms; output:\n${lines.join('\n')}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))
        waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
  return { child, port, lines, line, exited }
}

/** Spawns and waits for the "listening" log line. */
export async function startServer (t: Teardown, env: Record<string, string>, argv?: string[]): Promise<Spawned> {
  const s = await spawnServer(t, env, argv)
  // Loading TypeScript takes seconds on a busy CI machine running other test files.
  await s.line(l => l.includes('Server listening at'), 60000)
  return s
}
