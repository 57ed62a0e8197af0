import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import Fastify from 'fastify'
import adminRoutes from '../plugins/admin.ts'
import { Profiler } from '../services/profiler.ts'
import { freePort } from './helpers/server.ts'

interface Teardown { teardown: (fn: () => unknown) => void }

async function adminApp (t: Teardown, profiler = new Profiler()): Promise<string> {
  const app = Fastify()
  await app.register(adminRoutes, { profiler })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  return `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
}

t.test('GET /debug/profile returns a .cpuprofile of the live process', async t => {
  const url = await adminApp(t)
  const res = await fetch(`${url}/debug/profile?seconds=0.2`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-disposition'), /\.cpuprofile"/)
  const profile = await res.json() as { nodes: Array<{ callFrame: { functionName: string } }>, startTime: number, endTime: number, samples: number[] }
  t.ok(profile.nodes.length > 0)
  t.ok(profile.endTime - profile.startTime >= 150_000, 'covers the asked duration (µs)')
  t.ok(Array.isArray(profile.samples))
  t.ok(profile.nodes.some(n => n.callFrame.functionName === '(root)'))
})

t.test('one capture at a time: a second one gets 409', async t => {
  const profiler = new Profiler()
  const url = await adminApp(t, profiler)
  // The capture holds the profiler from its first synchronous step.
  const first = profiler.cpu(300)
  t.ok(profiler.busy)
  const heap = await fetch(`${url}/debug/heap`)
  t.equal(heap.status, 409)
  t.match(await heap.json(), { code: 'busy' })
  t.equal((await fetch(`${url}/debug/profile?seconds=0.05`)).status, 409)
  t.ok((await first).nodes.length > 0)
  t.notOk(profiler.busy)
  t.equal((await fetch(`${url}/debug/profile?seconds=0.05`)).status, 200, 'free again once done')
})

t.test('a bad duration is refused with 400', async t => {
  const url = await adminApp(t)
  t.equal((await fetch(`${url}/debug/profile?seconds=0`)).status, 400)
  t.equal((await fetch(`${url}/debug/profile?seconds=3600`)).status, 400)
})

t.test('GET /debug/heap returns a heap snapshot', async t => {
  const url = await adminApp(t)
  const res = await fetch(`${url}/debug/heap`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-disposition'), /\.heapsnapshot"/)
  const snapshot = await res.json() as { snapshot: { meta: { node_fields: string[] }, node_count: number }, nodes: number[] }
  t.ok(snapshot.snapshot.meta.node_fields.includes('self_size'))
  t.ok(snapshot.snapshot.node_count > 1000)
})

t.test('server.ts serves the admin routes on ADMIN_PORT only, bound to 127.0.0.1', async t => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], {
    env: { ...process.env, JWT_SECRET: 'admin-test-secret', PORT: String(port), ADMIN_PORT: String(adminPort), LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let listening = 0
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.includes('Server listening at')) listening++
    if (listening === 2) break
  }
  child.stdout.resume()
  t.equal((await fetch(`http://127.0.0.1:${adminPort}/debug/profile?seconds=0.1`)).status, 200)
  t.equal((await fetch(`http://127.0.0.1:${port}/debug/profile?seconds=0.1`)).status, 404)
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  t.same(await exited, [0, null])
})

t.test('node --heapsnapshot-signal writes a snapshot of server.ts and the server keeps serving', async t => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'registry-snapshot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // SIGUSR2 is the signal close-with-grace would otherwise take as a shutdown.
  const child = spawn(process.execPath, ['--import', 'tsx', `--diagnostic-dir=${dir}`, '--heapsnapshot-signal=SIGUSR2', 'server.ts'], {
    env: { ...process.env, JWT_SECRET: 'admin-test-secret', PORT: String(port), LOG_LEVEL: 'info', DEMO: 'false' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  for await (const line of createInterface({ input: child.stdout })) if (line.includes('Server listening at')) break
  child.stdout.resume()
  child.kill('SIGUSR2')
  // Written while the process stops for it; wait for the file, bounded.
  let written: string | undefined
  for (let i = 0; i < 600 && written === undefined; i++) {
    written = readdirSync(dir).find(f => f.endsWith('.heapsnapshot'))
    if (written === undefined) await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(written, 'a .heapsnapshot was written')
  t.equal(child.exitCode, null, 'still running')
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'still serving')
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  t.same(await exited, [0, null], 'SIGTERM still shuts it down gracefully')
})
