// What a consumer gets: `npm run build:client` emits dist/client, `exports["./client"]` finds it,
// and the built module connects from plain Node. Without TypeScript the demo serves dist too.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import { build, token } from './helpers/app.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

t.before(async () => {
  await promisify(execFile)(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.client.json'], { cwd: root })
})

t.test('the built client, imported through the package exports, connects', async t => {
  const pkg = JSON.parse(await readFile(`${root}package.json`, 'utf8')) as { exports: Record<string, { types: string, default: string }> }
  t.same(pkg.exports['./client'], { types: './dist/client/index.d.ts', default: './dist/client/index.js' })
  const types = await readFile(`${root}dist/client/index.d.ts`, 'utf8')
  t.match(types, 'export declare function connect')
  // A self-reference resolves through `exports`, as a consumer's import would. The name sits
  // in a variable so `tsc` does not look for dist/ (absent on a clean clone before this test).
  const specifier = 'workstream-registry/client'
  const built = await import(specifier) as typeof import('../client/index.ts')
  const { url } = await build(t)
  const client = await built.connect({ url, project: 'p1', token: token() })
  t.teardown(() => client.close())
  t.equal(client.state, 'open')
  t.ok(await client.ping() >= 0)
})

t.test('without TypeScript the demo serves the built modules', async t => {
  const { default: demoRoutes } = await t.mockImport<typeof import('../routes/demo.ts')>('../routes/demo.ts', { typescript: {} })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(demoRoutes, { iceServers: [] })
  const client = await app.inject('/demo/js/client/index.js')
  t.equal(client.statusCode, 200)
  t.match(client.body, 'from "./client.js"')
  t.equal((await app.inject('/demo/js/demo/app.js')).statusCode, 200)
  t.equal((await app.inject('/demo/js/client/index.d.js')).statusCode, 404)
})
