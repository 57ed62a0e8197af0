// A minimal WebSocket client on a bare net.Socket, for the load generator only. The `ws` client
// would mask, parse and emit per frame through several layers; here a send is one pre-built
// buffer with the timestamp patched in, one write, and a receive is a byte scan. That keeps the
// generator's core from saturating before the server does (bench/README in the Performance
// section explains how the two CPUs are reported).
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'

const marker = 0x7e // '~': starts the timestamp field inside every benchmark payload
const stampDigits = 12

/** A text frame as a client must send it (masked), with a slot for `~SS:TTTTTTTTTTTT`. */
export class FrameTemplate {
  readonly bytes: Buffer
  readonly mask: Buffer
  /** Offset of the first step digit in `bytes`, or -1 when the text has no marker. */
  readonly slot: number
  readonly #slotInPayload: number

  constructor (text: string, mask: Buffer = randomBytes(4)) {
    const payload = Buffer.from(text)
    const len = payload.length
    const header = len < 126 ? 2 : len < 65536 ? 4 : 10
    const bytes = Buffer.allocUnsafe(header + 4 + len)
    bytes[0] = 0x81
    if (len < 126) {
      bytes[1] = 0x80 | len
    } else if (len < 65536) {
      bytes[1] = 0x80 | 126
      bytes.writeUInt16BE(len, 2)
    } else {
      bytes[1] = 0x80 | 127
      bytes.writeBigUInt64BE(BigInt(len), 2)
    }
    mask.copy(bytes, header)
    const start = header + 4
    for (let i = 0; i < len; i++) bytes[start + i] = payload[i] ^ mask[i & 3]
    this.bytes = bytes
    this.mask = mask
    const at = payload.indexOf(marker)
    this.#slotInPayload = at < 0 ? -1 : at + 1
    this.slot = at < 0 ? -1 : start + at + 1
  }

  /** A copy with step and timestamp (µs) written into the slot, masked: ready to write. */
  stamp (step: number, us: number): Buffer {
    const out = Buffer.allocUnsafe(this.bytes.length)
    this.bytes.copy(out)
    const p = this.#slotInPayload
    const m = this.mask
    const o = this.slot
    out[o] = (48 + ((step / 10) | 0) % 10) ^ m[p & 3]
    out[o + 1] = (48 + step % 10) ^ m[(p + 1) & 3]
    // p + 2 is ':' and stays as built.
    let v = Math.floor(us)
    for (let i = stampDigits - 1; i >= 0; i--) {
      const k = p + 3 + i
      out[o + 3 + i] = (48 + v % 10) ^ m[k & 3]
      v = Math.floor(v / 10)
    }
    return out
  }
}

/** What the last successful readStamp found: one shared record, so a delivery allocates nothing. */
export const stamp = { step: 0, us: 0 }

/** Reads a stamped text's step and timestamp into `stamp`; false when it carries none. */
export function readStamp (buf: Buffer, start: number, end: number): boolean {
  const at = buf.indexOf(marker, start)
  if (at < 0 || at + 3 + stampDigits >= end + 1) return false
  stamp.step = (buf[at + 1] - 48) * 10 + (buf[at + 2] - 48)
  let us = 0
  for (let i = 0; i < stampDigits; i++) us = us * 10 + (buf[at + 4 + i] - 48)
  stamp.us = us
  return true
}

export interface WireHandlers {
  /**
   * A text message; `buf[start, end)` is valid only during the call. `wire` is passed because
   * the first message may arrive with the 101, before open() has returned the socket.
   */
  text (buf: Buffer, start: number, end: number, wire: WireSocket): void
  closed (reason: string): void
}

export interface OpenOptions {
  host: string
  port: number
  localAddress: string
  path: string
  /** The request's header lines after Host, from upgradeFields: made before the connect window. */
  fields: string
  timeoutMs: number
}

/**
 * The upgrade request's fixed header lines, its Sec-WebSocket-Key included: built when tokens
 * are minted, so connecting costs the generator one string and one write, not a CSPRNG call
 * and a header join per connection.
 */
export function upgradeFields (headers: Record<string, string>, key: Buffer): string {
  let fields = `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key.toString('base64')}\r\nSec-WebSocket-Version: 13\r\n`
  for (const [k, v] of Object.entries(headers)) fields += `${k}: ${v}\r\n`
  return fields + '\r\n'
}

const switching = Buffer.from('HTTP/1.1 101')

/** One client connection: handshake by hand, then a frame parser over the raw stream. */
export class WireSocket {
  readonly socket: Socket
  #pending: Buffer | undefined
  #handlers: WireHandlers | undefined
  #done = false

  private constructor (socket: Socket) {
    this.socket = socket
  }

  /** Connects and upgrades; resolves once the server answered 101. */
  static async open (opts: OpenOptions, handlers: WireHandlers): Promise<WireSocket> {
    return await new Promise((resolve, reject) => {
      const socket = connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress, noDelay: true })
      const wire = new WireSocket(socket)
      let head: Buffer = Buffer.alloc(0)
      const timer = setTimeout(() => fail(new Error('upgrade timed out')), opts.timeoutMs)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        socket.destroy()
        reject(err)
      }
      socket.once('error', fail)
      // One string, one write: the socket holds it until it has connected.
      socket.write(`GET ${opts.path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\n${opts.fields}`)
      const onHead = (chunk: Buffer): void => {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        socket.removeListener('data', onHead)
        if (head.compare(switching, 0, switching.length, 0, switching.length) !== 0) {
          fail(new Error(`upgrade refused: ${head.subarray(0, head.indexOf('\r\n')).toString()}`))
          return
        }
        clearTimeout(timer)
        socket.removeListener('error', fail)
        wire.#handlers = handlers
        socket.on('data', (c: Buffer) => wire.#onData(c))
        socket.on('error', () => wire.#finish('error'))
        socket.on('close', () => wire.#finish('closed'))
        resolve(wire)
        const rest = head.subarray(end + 4)
        if (rest.length > 0) wire.#onData(rest)
      }
      socket.on('data', onHead)
    })
  }

  write (frame: Buffer): void {
    if (!this.#done) this.socket.write(frame)
  }

  sendText (text: string): void {
    this.write(new FrameTemplate(text).bytes)
  }

  destroy (): void {
    this.#done = true
    this.socket.destroy()
  }

  #finish (reason: string): void {
    if (this.#done) return
    this.#done = true
    this.#handlers?.closed(reason)
  }

  #onData (chunk: Buffer): void {
    let buf = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk])
    this.#pending = undefined
    let i = 0
    const n = buf.length
    while (n - i >= 2) {
      const b0 = buf[i]
      let len = buf[i + 1] & 0x7f
      let h = 2
      if (len === 126) {
        if (n - i < 4) break
        len = buf.readUInt16BE(i + 2)
        h = 4
      } else if (len === 127) {
        if (n - i < 10) break
        len = Number(buf.readBigUInt64BE(i + 2))
        h = 10
      }
      if (n - i < h + len) break
      const start = i + h
      const end = start + len
      const opcode = b0 & 0x0f
      if (opcode === 1) {
        this.#handlers?.text(buf, start, end, this)
      } else if (opcode === 9) {
        // Heartbeat: answer a ping with a pong of the same payload (PROTOCOL.md §4).
        const pong = new FrameTemplate('').bytes
        pong[0] = 0x8a
        if (len === 0) this.write(pong)
        else this.write(Buffer.concat([Buffer.from([0x8a, 0x80 | len, 0, 0, 0, 0]), buf.subarray(start, end)]))
      } else if (opcode === 8) {
        this.destroy()
        this.#handlers?.closed(`close frame ${len >= 2 ? buf.readUInt16BE(start) : 1005}`)
        return
      }
      i = end
    }
    if (i < n) {
      buf = buf.subarray(i)
      // A copy, so a partial frame never pins the whole chunk it arrived in.
      this.#pending = Buffer.from(buf)
    }
  }
}
