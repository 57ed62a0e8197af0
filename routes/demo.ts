// GET /demo: a page that finds peers through the registry and chats with them over WebRTC.
// It ships the client SDK as browser modules, transpiled from client/ and demo/ at boot when
// TypeScript is installed; without it (a production install) it serves the output of
// `npm run build` from dist/.
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { IceServer } from '../services/options.ts'

/** The package's root, where demo/ and client/ live: one level up from source, two from dist/. */
const root = packageRoot(fileURLToPath(new URL('.', import.meta.url)))
const moduleDirs = ['client', 'demo'] as const
const moduleName = /^[a-z][a-z0-9-]*\.js$/

/**
 * The page holds no inline script or style, and talks only to its own origin (the ws upgrade
 * included: CSP 3 lets 'self' cover ws: and wss: on the same host).
 */
const pageHeaders = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'self'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache'
}

/**
 * Runs in a worker thread: TypeScript's compiler is ~30 MB of heap, and once imported it
 * would stay in the server's for good (module cache), where every major GC walks it while
 * peers relay. The worker exits when done and takes it along.
 */
const transpilerSource = `
const { parentPort, workerData } = require('node:worker_threads')
const { readdirSync, readFileSync } = require('node:fs')
const ts = require(workerData.typescript)
const compilerOptions = { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, rewriteRelativeImportExtensions: true }
const out = []
for (const dir of workerData.dirs) {
  for (const name of readdirSync(workerData.root + dir)) {
    if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue
    const source = readFileSync(workerData.root + dir + '/' + name, 'utf8')
    out.push([dir + '/' + name.slice(0, -3) + '.js', ts.transpileModule(source, { compilerOptions, fileName: name }).outputText])
  }
}
parentPort.postMessage(out)
`

/** client/ and demo/ transpiled by TypeScript when it is installed (dev), else undefined. */
async function transpiled (): Promise<Map<string, string> | undefined> {
  let typescript: string
  try {
    typescript = createRequire(import.meta.url).resolve('typescript')
  } catch {
    return undefined
  }
  const worker = new Worker(transpilerSource, { eval: true, workerData: { typescript, root, dirs: moduleDirs } })
  const [modules] = await once(worker, 'message') as [Array<[string, string]>]
  return new Map(modules)
}

/** Every module of client/ and demo/ as browser JavaScript, keyed `dir/name.js`. */
async function buildModules (log: FastifyInstance['log']): Promise<Map<string, string>> {
  const fromSource = await transpiled()
  if (fromSource !== undefined) return fromSource
  const modules = new Map<string, string>()
  for (const dir of moduleDirs) {
    const from = `${root}dist/${dir}/`
    let names: string[]
    try {
      names = await readdir(from)
    } catch {
      log.warn({ dir: from }, 'demo: TypeScript is not installed and there is no build; run `npm run build`')
      continue
    }
    for (const name of names) {
      if (name.endsWith('.js')) modules.set(`${dir}/${name}`, await readFile(from + name, 'utf8'))
    }
  }
  return modules
}

export interface DemoRouteOptions {
  iceServers: IceServer[]
}

export default async function demoRoutes (fastify: FastifyInstance, opts: DemoRouteOptions): Promise<void> {
  const modules = await buildModules(fastify.log)
  // A <base> makes the page's relative links work at /demo and /demo/, under any prefix.
  const base = `${fastify.prefix}/demo/`
  const html = (await readFile(`${root}demo/index.html`, 'utf8')).replace('<head>', `<head>\n<base href="${base}">`)
  const css = await readFile(`${root}demo/style.css`, 'utf8')
  const config = JSON.stringify({ iceServers: opts.iceServers })

  const page = async (_request: unknown, reply: FastifyReply): Promise<string> => {
    reply.headers(pageHeaders).type('text/html; charset=utf-8')
    return html
  }
  const hide = { schema: { hide: true } }
  fastify.get('/demo', hide, page)
  fastify.get('/demo/', hide, page)
  fastify.get('/demo/style.css', hide, async (_request, reply) => {
    reply.headers(pageHeaders).type('text/css; charset=utf-8')
    return css
  })
  fastify.get('/demo/config.json', hide, async (_request, reply) => {
    reply.headers({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).type('application/json; charset=utf-8')
    return config
  })
  fastify.get<{ Params: { dir: string, name: string } }>('/demo/js/:dir/:name', hide, async (request, reply) => {
    const { dir, name } = request.params
    const source = moduleName.test(name) ? modules.get(`${dir}/${name}`) : undefined
    if (source === undefined) return reply.code(404).send({ statusCode: 404, code: 'not_found', error: 'Not Found', message: 'no such module' })
    reply.headers(pageHeaders).type('text/javascript; charset=utf-8')
    return source
  })
}

function packageRoot (from: string): string {
  let dir = from
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`demo: no package.json above ${from}`)
    dir = up
  }
  return dir + '/'
}
