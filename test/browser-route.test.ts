// The demo's HTTP side: off unless asked for, safe headers, ICE servers validated and served.
import t from 'tap'
import { build } from './helpers/app.ts'
import { EnvError, readEnv } from '../services/env.ts'

t.test('/demo is off in the plugin unless demo: true', async t => {
  const { url } = await build(t)
  t.equal((await fetch(`${url}/demo`)).status, 404)
})

t.test('the page, its modules and its config, under a prefix', async t => {
  const iceServers = [{ urls: 'stun:stun.example.org:3478' }, { urls: ['turn:turn.example.org'], username: 'u', credential: 'c' }]
  const { url } = await build(t, { prefix: '/registry', registry: { demo: true, iceServers } })
  for (const path of ['/demo', '/demo/']) {
    const page = await fetch(`${url}${path}`)
    t.equal(page.status, 200, path)
    t.match(page.headers.get('content-type'), /^text\/html/)
    t.match(page.headers.get('content-security-policy'), /script-src 'self'/)
    t.equal(page.headers.get('referrer-policy'), 'no-referrer')
    t.match(await page.text(), '<base href="/registry/demo/">')
  }
  const app = await fetch(`${url}/demo/js/demo/app.js`)
  t.equal(app.status, 200)
  t.match(app.headers.get('content-type'), /^text\/javascript/)
  t.match(await app.text(), 'from "../client/index.js"', 'imports rewritten for the browser')
  const client = await (await fetch(`${url}/demo/js/client/index.js`)).text()
  t.notMatch(client, /services\//, 'no server code reaches the browser')
  t.same(await (await fetch(`${url}/demo/config.json`)).json(), { iceServers })
  for (const bad of ['/demo/js/client/index.ts', '/demo/js/services/env.js', '/demo/js/..%2Fpackage.json/x.js']) {
    t.equal((await fetch(`${url}${bad}`)).status, 404, bad)
  }
})

t.test('ICE_SERVERS is a validated JSON array', async t => {
  const secret = (): string => 'dev'
  t.same(readEnv({ ICE_SERVERS: '[{"urls":"stun:127.0.0.1:3478"}]' }, secret).options.iceServers, [{ urls: 'stun:127.0.0.1:3478' }])
  t.equal(readEnv({}, secret).options.iceServers, undefined, 'unset: host candidates only')
  t.throws(() => readEnv({ ICE_SERVERS: 'stun:x' }, secret), new EnvError('invalid environment variable ICE_SERVERS: expected a JSON array such as [{"urls":"stun:stun.example.org:3478"}]'))
  t.throws(() => readEnv({ ICE_SERVERS: '[{"urls":"http://x"}]' }, secret), /^invalid environment variable ICE_SERVERS: /)
  t.throws(() => readEnv({ ICE_SERVERS: '[{"urls":"stun:x","extra":1}]' }, secret), /ICE_SERVERS/)
})
