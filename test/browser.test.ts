// End to end in a real browser: the standalone server (as `npm start` runs it) serves /demo;
// two Chromium pages in one project find each other and chat over a WebRTC data channel whose
// offer, answer and ICE went through the registry; a page in another project sees neither.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { access, constants, mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'
import { freePort } from './helpers/server.ts'

const chromiumPath = '/usr/bin/chromium'
const root = fileURLToPath(new URL('..', import.meta.url))
const artifacts = `${root}test/artifacts`
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // The machine has only loopback: WebRTC must be allowed to use it, with real host addresses.
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns'
]

/** Spawns server.ts with the random dev secret and returns the demo link it prints. */
async function startServer (t: Test): Promise<URL> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, HOST: '127.0.0.1', PORT: String(port), JWT_SECRET: '', JWT_PUBLIC_KEY: '', REDIS_URL: '', NODE_ENV: 'development', LOG_LEVEL: 'warn', DEMO: 'true' }
  delete env.ADMIN_PORT
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  })
  let output = ''
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  return await new Promise<URL>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString()
      const m = /(http:\/\/\S+\/demo#project=demo&token=\S+)/.exec(output)
      if (m !== null) resolve(new URL(m[1]))
    })
    child.once('exit', code => reject(new Error(`server.ts exited (${code}) before printing a demo link:\n${output}`)))
  })
}

/** Opens the demo (the link's fragment connects it) and waits until it is connected. */
async function openDemo (t: Test, page: Page, link: URL, project: string): Promise<string> {
  const url = new URL(link)
  url.hash = `project=${project}&token=${new URLSearchParams(link.hash.slice(1)).get('token') ?? ''}`
  await page.goto(url.href)
  await page.locator('#status', { hasText: `Connected to project ${project}` }).waitFor()
  t.equal(new URL(page.url()).hash, '', 'the token was dropped from the address bar')
  return await page.evaluate(() => document.documentElement.dataset.peerId ?? '')
}

t.test('two pages chat over WebRTC; a third project sees neither', async t => {
  await access(chromiumPath, constants.X_OK).catch(() => {
    throw new Error(`${chromiumPath} is missing: apt-get install -y chromium (.ci/run does it)`)
  })
  await mkdir(artifacts, { recursive: true })
  const link = await startServer(t)
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true })
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const pages = await Promise.all([context.newPage(), context.newPage(), context.newPage()])
  const errors: string[] = []
  for (const p of pages) p.on('pageerror', err => errors.push(err.message))
  const [page1, page2, page3] = pages

  const id1 = await openDemo(t, page1, link, 'demo')
  const id2 = await openDemo(t, page2, link, 'demo')
  // Page 3 uses the form: a bad token is refused (the browser hides the 401; the client asks
  // REST why), then a good one joins another project.
  const token = new URLSearchParams(link.hash.slice(1)).get('token') ?? ''
  await page3.goto(new URL('/demo', link).href)
  await page3.locator('#project').fill('other')
  await page3.locator('#token').fill('not-a-token')
  await page3.locator('#connect').click()
  await page3.locator('#status', { hasText: '(unauthorized)' }).waitFor()
  await page3.locator('#token').fill(token)
  await page3.locator('#connect').click()
  await page3.locator('#status', { hasText: 'Connected to project other' }).waitFor()
  const id3 = await page3.evaluate(() => document.documentElement.dataset.peerId ?? '')

  // Each of the two sees the other, by peer id; page 1 heard page 2 join.
  await page1.locator(`#peer-list button[data-peer-id="${id2}"]`).waitFor()
  await page2.locator(`#peer-list button[data-peer-id="${id1}"]`).waitFor()

  // Page 1 picks page 2: the offer, answer and candidates travel as registry signals.
  await page1.locator(`#peer-list button[data-peer-id="${id2}"]`).click()
  t.equal(await page1.locator(`#peer-list button[data-peer-id="${id2}"]`).getAttribute('aria-pressed'), 'true')
  await page1.locator('#send:not([disabled])').waitFor()
  await page1.locator('#message').fill('hello over the data channel')
  await page1.locator('#send').click()
  await page2.locator('#log li.theirs', { hasText: 'hello over the data channel' }).waitFor()
  await page1.locator('#log li.mine', { hasText: 'hello over the data channel' }).waitFor()

  // Page 2 answers on the same channel without choosing: the chat that opened is chosen for it.
  await page2.locator('#send:not([disabled])').waitFor()
  await page2.locator('#message').fill('and back again')
  await page2.locator('#send').click()
  await page1.locator('#log li.theirs', { hasText: 'and back again' }).waitFor()

  // Membership is per project: by now every join has been announced, so the lists are final.
  t.same(await peerIds(page1), [id2], 'page 1 lists only page 2')
  t.same(await peerIds(page2), [id1], 'page 2 lists only page 1')
  t.same(await peerIds(page3), [], 'the page in another project lists nobody')
  t.ok(await page3.locator('#peers-empty').isVisible(), 'and says so')
  t.equal(await page3.locator('#log li.theirs').count(), 0, 'and got no message')
  t.notOk([id1, id2].includes(id3))

  // The offer, the answer and the ICE candidates were registry signals (the chat was not).
  const metrics = await (await fetch(new URL('/metrics', link))).text()
  const signals = Number(/^registry_frames_in_total\{type="signal"[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? 0)
  t.ok(signals >= 3, `${signals} signals relayed: at least an offer, an answer and a candidate`)

  await Promise.all(pages.map((p, i) => p.screenshot({ path: `${artifacts}/browser-page${i + 1}.png`, fullPage: true })))
  t.same(errors, [], 'no uncaught error on any page')
})

async function peerIds (page: Page): Promise<string[]> {
  return await page.locator('#peer-list button').evaluateAll(buttons => buttons.map(b => (b as HTMLElement).dataset.peerId ?? ''))
}
