import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { PeerSocket } from '../services/session.ts'

const textFrame = { binary: false }
const OPEN = 1
const kOwner = Symbol('registry.peerSocket')
type Owned = WebSocket & { [kOwner]: WsPeerSocket }

function closeFlushed (this: Owned, code?: number, reason?: string | Buffer): void {
  this[kOwner].closeFlushed(code, reason)
}

/**
 * A whole unmasked text frame (RFC 6455 §5.2) in one buffer: header and payload in one
 * allocation and one write, where `ws.send` makes a header buffer, a list and two writes per
 * frame. At tens of thousands of frames a second that is a large share of the garbage the
 * young generation collects.
 */
function textFrameOf (data: string | Buffer): Buffer {
  const len = typeof data === 'string' ? Buffer.byteLength(data) : data.length
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + len)
  frame[0] = 0x81
  if (head === 2) {
    frame[1] = len
  } else if (head === 4) {
    frame[1] = 126
    frame.writeUInt16BE(len, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(0, 2)
    frame.writeUInt32BE(len, 6)
  }
  if (typeof data === 'string') frame.write(data, head)
  else data.copy(frame, head)
  return frame
}

/** A fan-out hands the same payload to every socket in a row: frame it once for all. */
let lastPayload: Buffer | undefined
let lastFrame: Buffer | undefined
function sharedFrameOf (data: Buffer): Buffer {
  if (data !== lastPayload || lastFrame === undefined) {
    lastPayload = data
    lastFrame = textFrameOf(data)
  }
  return lastFrame
}

/**
 * How long a presence event may wait for others to the same socket. Peers of a team join and
 * leave in bursts (a restart, a meeting): ten joins would otherwise cost each member ten
 * writes. Nobody sees 10 ms of presence latency.
 */
const presenceDelayMs = 10

/** When a socket's held frames leave: at once, when this callback returns, or with the presence timer. */
const Hold = { none: 0, tick: 1, later: 2 } as const
type Hold = typeof Hold[keyof typeof Hold]

/**
 * Sockets written to while the current callback runs (one socket's read, a Bus message, a
 * timer), held until it returns: a burst read in one chunk (trickled ICE candidates, a
 * client's queued signals) leaves as one write per recipient. One nextTick per callback, not
 * per frame.
 *
 * Not until the loop's check phase (setImmediate): frames held across a whole poll phase
 * are alive when V8's scavenge runs inside it. Held that way, five relay runs of six settled
 * into copying and promoting ~1 MB at every scavenge, with pauses twice as long
 * (`--trace-gc-nvp`); released per callback, one of five did (the rest of that cause is
 * V8's pretenuring, services/gc-tuning.ts).
 */
const thisTick: WsPeerSocket[] = []
/** Sockets holding only deferrable frames (presence events), released by one shared timer. */
const later: WsPeerSocket[] = []

function release (list: WsPeerSocket[], state: Hold): void {
  for (let i = 0; i < list.length; i++) list[i].release(state)
  list.length = 0
}
const releaseTick = (): void => { release(thisTick, Hold.tick) }
const releaseLater = (): void => { release(later, Hold.later) }

/**
 * Adapts a `ws` socket to the hub's PeerSocket; buffers are sent as text frames. Holding
 * changes only when bytes leave, never their order: a frame that may not wait (a signal, a
 * reply) takes any deferred presence events along with it, in the order they were sent.
 *
 * Held frames wait in a field of ours rather than in a corked socket: a corked Writable
 * allocates a request per write even when, as for nearly every relayed frame, the callback brings
 * the socket one frame only.
 */
export class WsPeerSocket implements PeerSocket {
  #hold: Hold = Hold.none
  #held: Buffer | Buffer[] | undefined
  #heldBytes = 0
  /**
   * Frames may bypass ws's sender only while it can hold nothing back: with an extension
   * (a host's server that negotiated permessage-deflate) it queues frames while compressing,
   * so those sockets go through ws.send, corked instead of held.
   */
  readonly #direct: boolean
  /** The socket's close before ours replaced it (ws's own, or routes/ws.ts's for a host). */
  readonly #close: WebSocket['close']
  constructor (readonly ws: WebSocket, readonly raw: Socket) {
    this.#direct = ws.extensions === ''
    // ws also closes by itself (a protocol error, the peer's close frame, a host's shutdown):
    // what we hold leaves before its close frame, as the answers to the frames before a
    // violation must. One shared function finds us through the socket: a bound function
    // and a closure per peer cost more heap than the rest of this object.
    this.#close = ws.close
    const owned = ws as Owned
    owned[kOwner] = this
    owned.close = closeFlushed
  }

  /** Whatever is held leaves first, then the close frame. */
  closeFlushed (code?: number, reason?: string | Buffer): void {
    this.#flush()
    this.#close.call(this.ws, code, reason)
  }

  send (data: string | Buffer, deferrable = false): void {
    // ws.send after close() drops the frame; so does this (no data after a close frame).
    if (this.ws.readyState !== OPEN) return
    if (!this.#direct) {
      this.#schedule(deferrable)
      this.ws.send(data, textFrame)
      return
    }
    const frame = typeof data === 'string' ? textFrameOf(data) : sharedFrameOf(data)
    const held = this.#held
    // Corked by the upgrade (routes/ws.ts): the welcome leaves in the same write as the 101.
    if (held === undefined && this.raw.writableCorked !== 0) {
      this.raw.write(frame)
      return
    }
    this.#schedule(deferrable)
    if (held === undefined) this.#held = frame
    else if (Array.isArray(held)) held.push(frame)
    else this.#held = [held, frame]
    this.#heldBytes += frame.length
  }

  #schedule (deferrable: boolean): void {
    if (this.#hold === Hold.none) {
      if (!this.#direct) this.raw.cork()
      if (deferrable) {
        this.#hold = Hold.later
        if (later.push(this) === 1) setTimeout(releaseLater, presenceDelayMs)
      } else {
        this.#hold = Hold.tick
        if (thisTick.push(this) === 1) process.nextTick(releaseTick)
      }
    } else if (this.#hold === Hold.later && !deferrable) {
      this.#hold = Hold.tick
      if (thisTick.push(this) === 1) process.nextTick(releaseTick)
    }
  }

  /** Sends what was held in `state`; a socket moved on to another state is left alone. */
  release (state: Hold): void {
    if (this.#hold !== state) return
    this.#hold = Hold.none
    if (this.#direct) this.#flush()
    else this.raw.uncork()
  }

  #flush (): void {
    const held = this.#held
    if (held === undefined) return
    this.#held = undefined
    this.#heldBytes = 0
    // Closed meanwhile (by the peer, or ws on a protocol error): nothing may follow its close frame.
    if (this.ws.readyState !== OPEN) return
    this.raw.write(Array.isArray(held) ? Buffer.concat(held) : held)
  }

  close (code: number, reason?: string): void { this.ws.close(code, reason) }

  terminate (): void { this.ws.terminate() }
  ping (): void { this.ws.ping() }
  get bufferedAmount (): number { return this.ws.bufferedAmount + this.#heldBytes }
}
