// What production runs and what a JavaScript host imports: `npm run build` emits dist/, which
// plain Node (no TypeScript loader) starts as the standalone server and loads through
// `exports["."]` as a plugin.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { secret, token } from './helpers/app.ts'
import { connect } from './helpers/peer.ts'
import { spawnServer, startServer } from './helpers/server.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

t.before(async () => {
  await promisify(execFile)(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'], { cwd: root })
})

t.test('the built standalone server runs on plain Node: health, demo, a peer', async t => {
  const server = await startServer(t, { JWT_SECRET: secret, LOG_LEVEL: 'info' }, ['dist/server.js'])
  const base = `http://127.0.0.1:${server.port}`
  t.equal((await fetch(`${base}/healthz`)).status, 200)
  // The demo finds demo/ and client/ from dist/routes as it does from routes/.
  const page = await fetch(`${base}/demo`)
  t.equal(page.status, 200)
  t.match(await page.text(), '<html')
  t.equal((await fetch(`${base}/demo/js/client/index.js`)).status, 200)
  const peer = await connect(t, `ws://127.0.0.1:${server.port}/v1/ws?project=built`, { token: token() })
  t.equal(peer.welcome.projectId, 'built')
})

t.test('the package ships the build and the sources, not the tests or the bench', async t => {
  // --ignore-scripts: prepack would rebuild dist/ under the other test files that read it.
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root })
  const files = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map(f => f.path))
  for (const path of ['dist/app.js', 'dist/app.d.ts', 'dist/server.js', 'app.ts', 'demo/index.html', 'package.json']) t.ok(files.has(path), path)
  t.same([...files].filter(f => /^(test|bench|\.ci)\//.test(f)), [], 'no tests, bench or CI')
})

t.test('a JavaScript host imports the package by name and embeds it', async t => {
  const pkg = JSON.parse(await readFile(`${root}package.json`, 'utf8')) as { exports: Record<string, unknown> }
  t.same(pkg.exports['.'], { source: './app.ts', types: './dist/app.d.ts', default: './dist/app.js' })
  const types = await readFile(`${root}dist/app.d.ts`, 'utf8')
  t.match(types, 'RegistryOptions')
  // Inside the package, so the bare name resolves through `exports` as a consumer's would.
  const dir = `${root}test/artifacts/js-host-${process.pid}`
  await mkdir(dir, { recursive: true })
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(`${dir}/host.mjs`, `
import Fastify from 'fastify'
import registry from 'workstream-registry'
const app = Fastify({ routerOptions: { maxParamLength: 1024 } })
app.get('/', async () => ({ hello: 'host' }))
await app.register(registry, { prefix: '/registry', jwt: { secret: process.env.JWT_SECRET } })
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log('host listening')
`)
  const host = await spawnServer(t, { JWT_SECRET: secret }, [`${dir}/host.mjs`])
  await host.line(l => l === 'host listening', 60000)
  const base = `127.0.0.1:${host.port}`
  t.same(await (await fetch(`http://${base}/`)).json(), { hello: 'host' })
  const peer = await connect(t, `ws://${base}/registry/v1/ws?project=embedded`, { token: token({ sub: 'u-js' }) })
  const listed = await fetch(`http://${base}/registry/v1/projects/embedded/peers`, { headers: { authorization: `Bearer ${token()}` } })
  t.equal(listed.status, 200)
  const body = await listed.json() as { peers: Array<{ peerId: string }> }
  t.same(body.peers.map(p => p.peerId), [peer.peerId])
})
