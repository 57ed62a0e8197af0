// Raw TCP access for what a well-behaved `ws` client cannot send: broken upgrades and
// malformed frames (PROTOCOL.md §2 "not a valid RFC 6455 upgrade", §4 1002/1007/1008).
import net from 'node:net'
import { randomBytes } from 'node:crypto'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface RawReply { status: number, headers: Record<string, string>, body: string, text: string }

/** Splits an HTTP reply (head and whatever body came) into its parts. */
export function parseReply (text: string): RawReply {
  const end = text.indexOf('\r\n\r\n')
  const head = end < 0 ? text : text.slice(0, end)
  const [statusLine, ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0)
  return { status, headers, body: end < 0 ? '' : text.slice(end + 4), text }
}

/**
 * Sends `request` as is and resolves with the reply once it is complete (its Content-Length
 * arrived) or the server closed the socket, whichever comes first; with `awaitClose`, only
 * once the server closed it.
 */
export async function rawRequest (port: number, request: string | Buffer, opts: { awaitClose?: boolean } = {}): Promise<RawReply> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let text = ''
  await new Promise<void>(resolve => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      const r = parseReply(text)
      const length = Number(r.headers['content-length'] ?? NaN)
      if (opts.awaitClose !== true && r.status !== 0 && Buffer.byteLength(r.body, 'latin1') >= length) resolve()
    })
    socket.once('close', () => resolve())
    socket.write(request)
  })
  socket.destroy()
  return parseReply(text)
}

/** A masked client frame; `rsv` is the three RSV bits, `mask: false` breaks RFC 6455 §5.1. */
export function encodeFrame (opcode: number, payload: Buffer | string, opts: { fin?: boolean, mask?: boolean, rsv?: number } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const fin = opts.fin ?? true
  const mask = opts.mask ?? true
  const len = data.length
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0))
  head[0] = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127)
  if (ext === 2) head.writeUInt16BE(len, 2)
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2)
  if (!mask) return Buffer.concat([head, data])
  const key = randomBytes(4)
  key.copy(head, 2 + ext)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3]
  return Buffer.concat([head, body])
}

export interface ServerWsFrame { opcode: number, payload: Buffer }

export interface RawWs {
  socket: net.Socket
  /** The 101 reply's head. */
  reply: RawReply
  /** Every frame the server sent so far, in order. */
  frames: ServerWsFrame[]
  /** The next text frame, parsed (waits for it). */
  nextText: () => Promise<Record<string, unknown>>
  /** Resolves with the close code of the server's close frame, or 1006 if the socket ended without one. */
  closed: Promise<number>
  write: (data: Buffer) => void
}

function handshake (path: string, headers: Record<string, string>): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)
  ]
  return lines.join('\r\n') + '\r\n\r\n'
}

/**
 * Upgrades a bare TCP socket to a WebSocket; `early` is written in the same packet as the
 * upgrade request. Resolves once the 101 arrived.
 */
export async function rawWebSocket (t: Teardown, port: number, path: string, headers: Record<string, string>, early?: Buffer): Promise<RawWs> {
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  const frames: ServerWsFrame[] = []
  const waiters: Array<() => void> = []
  let buf = Buffer.alloc(0)
  let reply: RawReply | undefined
  let onReply: ((r: RawReply) => void) | undefined
  let closeCode: number | undefined
  let ended = false
  const wake = (): void => { for (const w of waiters.splice(0)) w() }
  const closed = new Promise<number>(resolve => {
    socket.on('close', () => { ended = true; wake(); resolve(closeCode ?? 1006) })
  })
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d])
    if (reply === undefined) {
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      reply = parseReply(buf.subarray(0, end + 4).toString('latin1'))
      buf = buf.subarray(end + 4)
      onReply?.(reply)
    }
    for (;;) {
      if (buf.length < 2) break
      let len = buf[1] & 0x7f
      let off = 2
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4 }
      if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10 }
      if (buf.length < off + len) break
      const frame = { opcode: buf[0] & 0x0f, payload: Buffer.from(buf.subarray(off, off + len)) }
      buf = buf.subarray(off + len)
      if (frame.opcode === 8 && closeCode === undefined) closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005
      frames.push(frame)
    }
    wake()
  })
  let taken = 0
  const nextText = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      while (taken < frames.length) {
        const f = frames[taken++]
        if (f.opcode === 1) return JSON.parse(f.payload.toString()) as Record<string, unknown>
      }
      if (ended) throw new Error('socket closed')
      await new Promise<void>(resolve => waiters.push(resolve))
    }
  }
  socket.write(early === undefined ? handshake(path, headers) : Buffer.concat([Buffer.from(handshake(path, headers)), early]))
  const got = reply ?? await new Promise<RawReply>((resolve, reject) => {
    onReply = resolve
    socket.once('close', () => reject(new Error('closed before the upgrade reply')))
  })
  if (got.status !== 101) throw new Error(`upgrade refused: ${got.status}`)
  return { socket, reply: got, frames, nextText, closed, write: (d) => { socket.write(d) } }
}

/** The port of a listening Fastify app. */
export function portOf (server: { address: () => unknown }): number {
  const a = server.address() as { port?: number } | null
  return a?.port ?? 0
}
