// Real redis-server processes on free ports for the cluster tests: never the machine's Redis
// on 6379, no persistence, killed by pid at teardown (STYLE.md §9).
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

interface Teardown { teardown: (fn: () => unknown) => void }

const exec = promisify(execFile)

export interface RedisServer {
  port: number
  url: string
  readonly pid: number | undefined
  /** SIGKILLs the server and waits for it to be gone. */
  kill: () => Promise<void>
  /** Starts it again on the same port (empty: no persistence) and waits for PING. */
  restart: () => Promise<void>
  cli: (...args: string[]) => Promise<string>
}

/** A port that is free now, and whose +10000 cluster-bus port is free too. */
export async function freePort (): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const address = srv.address()
        srv.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
      })
    })
    if (port + 10000 <= 65535 && await isFree(port + 10000)) return port
  }
}

async function isFree (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

async function ping (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.setTimeout(500, () => { socket.destroy(); resolve(false) })
    socket.once('error', () => resolve(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', d => { socket.destroy(); resolve(d.toString().startsWith('+PONG')) })
  })
}

/** Bounded polling of a condition (a server coming up is not an event we can await). */
export async function until (check: () => Promise<boolean> | boolean, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function launch (port: number, extra: string[]): ChildProcess {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' })
  return child
}

async function stop (child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

/** Starts one redis-server on a free port and waits until it answers PING. */
export async function startRedis (t: Teardown, extra: string[] = []): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined = launch(port, extra)
  t.teardown(() => stop(child))
  await until(() => ping(port), 10000, `redis-server on ${port}`)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child?.pid },
    async kill () { await stop(child); child = undefined },
    async restart () {
      await stop(child)
      child = launch(port, extra)
      await until(() => ping(port), 10000, `redis-server on ${port}`)
    },
    cli: async (...args) => (await exec('redis-cli', ['-p', String(port), ...args])).stdout.trim()
  }
}

export interface RedisCluster {
  servers: RedisServer[]
  /** The REDIS_URL of the registry: every master as a seed. */
  url: string
}

/** Three masters, no replicas, created with `redis-cli --cluster create`; waits for cluster_state:ok everywhere. */
export async function startCluster (t: Teardown): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'wsp-cluster-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const servers: RedisServer[] = []
  for (let i = 0; i < 3; i++) {
    servers.push(await startRedis(t, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${i}.conf`), '--cluster-node-timeout', '2000', '--dir', dir]))
  }
  await exec('redis-cli', ['--cluster', 'create', ...servers.map(s => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'])
  await until(async () => {
    for (const s of servers) if (!(await s.cli('cluster', 'info')).includes('cluster_state:ok')) return false
    return true
  }, 20000, 'cluster_state:ok')
  return { servers, url: servers.map(s => s.url).join(',') }
}

export interface CutProxy {
  url: string
  /** Black-holes traffic both ways: sockets stay open, nothing gets through (a partition). */
  cut: () => void
  /** Ends the partition; connections that lived through it are reset, as TCP would after a long one. */
  heal: () => void
}

/** A TCP proxy in front of a Redis, to cut one node off while the others keep talking to it. */
export async function startProxy (t: Teardown, targetPort: number): Promise<CutProxy> {
  const sockets = new Set<import('node:net').Socket>()
  let blackhole = false
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    client.on('data', d => { if (!blackhole) upstream.write(d) })
    upstream.on('data', d => { if (!blackhole) client.write(d) })
  })
  const port = await freePort()
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise(resolve => server.close(resolve))
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => { blackhole = true },
    heal: () => {
      for (const s of sockets) s.destroy()
      blackhole = false
    }
  }
}
