// A `ws` peer that queues every frame, so tests await frames, never durations.
import WebSocket from 'ws'
import type { IncomingMessage } from 'node:http'

interface Teardown { teardown: (fn: () => unknown) => void }

export type Frame = Record<string, any>

export interface Peer {
  ws: WebSocket
  /** The welcome frame. */
  welcome: Frame
  peerId: string
  /** The next frame not yet taken (waits for it). */
  next: (timeoutMs?: number) => Promise<Frame>
  /** The next frame of `type`, skipping others (they stay unread in `skipped`). */
  nextOf: (type: string, timeoutMs?: number) => Promise<Frame>
  skipped: Frame[]
  send: (frame: unknown) => void
  /** Resolves with the close code once the socket closed. */
  closed: Promise<{ code: number, reason: string }>
  close: (code?: number) => Promise<{ code: number, reason: string }>
  /** Frames received and not taken yet. */
  pending: () => Frame[]
}

export interface ConnectOptions {
  token?: string
  headers?: Record<string, string>
  /** Put the token in `?access_token=` instead of the header. */
  query?: boolean
  wsOptions?: WebSocket.ClientOptions
}

/** Opens a real socket and waits for `welcome`; closes it at teardown. */
export async function connect (t: Teardown, url: string, opts: ConnectOptions = {}): Promise<Peer> {
  const peer = open(t, url, opts)
  const welcome = await peer.next()
  if (welcome.type !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`)
  peer.welcome = welcome
  peer.peerId = welcome.peerId
  return peer
}

/** A client socket carrying the token in the header, or in `?access_token=` when asked. */
function dial (url: string, opts: ConnectOptions): WebSocket {
  const headers: Record<string, string> = { ...opts.headers }
  let target = url
  if (opts.token !== undefined) {
    if (opts.query === true) target += `&access_token=${encodeURIComponent(opts.token)}`
    else headers.authorization = `Bearer ${opts.token}`
  }
  return new WebSocket(target, { headers, ...opts.wsOptions })
}

/** Opens a socket without waiting for anything. */
export function open (t: Teardown, url: string, opts: ConnectOptions = {}): Peer {
  const ws = dial(url, opts)
  const queue: Frame[] = []
  const waiters: Array<(f: Frame | Error) => void> = []
  let failure: Error | undefined
  const closed = new Promise<{ code: number, reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      failure = new Error(`socket closed (${code})`)
      for (const w of waiters.splice(0)) w(failure)
      resolve({ code, reason: reason.toString() })
    })
  })
  ws.on('error', (err) => {
    failure = err
    for (const w of waiters.splice(0)) w(err)
  })
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame
    const w = waiters.shift()
    if (w !== undefined) w(frame)
    else queue.push(frame)
  })
  const next = (timeoutMs = 5000): Promise<Frame> => {
    const ready = queue.shift()
    if (ready !== undefined) return Promise.resolve(ready)
    if (failure !== undefined) return Promise.reject(failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = waiters.indexOf(done)
        if (i >= 0) waiters.splice(i, 1)
        reject(new Error(`no frame within ${timeoutMs} ms`))
      }, timeoutMs)
      const done = (f: Frame | Error): void => {
        clearTimeout(timer)
        if (f instanceof Error) reject(f)
        else resolve(f)
      }
      waiters.push(done)
    })
  }
  const skipped: Frame[] = []
  const peer: Peer = {
    ws,
    welcome: {},
    peerId: '',
    next,
    skipped,
    async nextOf (type, timeoutMs = 5000) {
      for (;;) {
        const f = await next(timeoutMs)
        if (f.type === type) return f
        skipped.push(f)
      }
    },
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    closed,
    async close (code = 1000) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(code)
      return await closed
    },
    pending: () => queue.slice()
  }
  t.teardown(() => { if (ws.readyState !== WebSocket.CLOSED) ws.terminate() })
  return peer
}

export interface Refused { status: number, body: Record<string, any>, headers: IncomingMessage['headers'] }

/** Attempts an upgrade that must be refused; resolves with the HTTP status and JSON body. */
export async function refused (url: string, opts: ConnectOptions = {}): Promise<Refused> {
  const ws = dial(url, opts)
  return await new Promise((resolve, reject) => {
    ws.on('open', () => { ws.terminate(); reject(new Error('upgrade was accepted')) })
    ws.on('error', () => {})
    ws.on('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => {
        let body: Record<string, any> = {}
        try { body = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers })
        ws.terminate()
      })
    })
  })
}
