import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { PeerSocket } from '../services/session.ts'

const textFrame = { binary: false }
const OPEN = 1

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

/** A socket's cork: none, until the end of this turn, or until the presence timer. */
const Cork = { none: 0, turn: 1, later: 2 } as const
type Cork = typeof Cork[keyof typeof Cork]

/**
 * Sockets written to in this turn of the event loop, corked until its check phase: a socket
 * that gets several frames in one turn (a burst of signals read in one poll) sends them in
 * one writev. One setImmediate per turn, not per frame.
 */
const thisTurn: WsPeerSocket[] = []
/** Sockets holding only deferrable frames (presence events), uncorked by one shared timer. */
const later: WsPeerSocket[] = []

function uncork (list: WsPeerSocket[], state: Cork): void {
  for (let i = 0; i < list.length; i++) list[i].uncork(state)
  list.length = 0
}
const uncorkTurn = (): void => { uncork(thisTurn, Cork.turn) }
const uncorkLater = (): void => { uncork(later, Cork.later) }

/**
 * Adapts a `ws` socket to the hub's PeerSocket; buffers are sent as text frames. Corking
 * changes only when bytes leave, never their order: a frame that may not wait (a signal, a
 * reply) takes any deferred presence events along with it, in the order they were sent.
 */
export class WsPeerSocket implements PeerSocket {
  #cork: Cork = Cork.none
  /**
   * Frames may bypass ws's sender only while it can hold nothing back: with an extension
   * (a host's server that negotiated permessage-deflate) it queues frames while compressing.
   */
  readonly #direct: boolean
  constructor (readonly ws: WebSocket, readonly raw: Socket) {
    this.#direct = ws.extensions === ''
  }

  send (data: string | Buffer, deferrable = false): void {
    // ws.send after close() drops the frame; so does this (no data after a close frame).
    if (this.ws.readyState !== OPEN) return
    if (this.#cork === Cork.none) {
      this.raw.cork()
      if (deferrable) {
        this.#cork = Cork.later
        if (later.push(this) === 1) setTimeout(uncorkLater, presenceDelayMs)
      } else {
        this.#cork = Cork.turn
        if (thisTurn.push(this) === 1) setImmediate(uncorkTurn)
      }
    } else if (this.#cork === Cork.later && !deferrable) {
      this.#cork = Cork.turn
      if (thisTurn.push(this) === 1) setImmediate(uncorkTurn)
    }
    if (!this.#direct) this.ws.send(data, textFrame)
    else this.raw.write(typeof data === 'string' ? textFrameOf(data) : sharedFrameOf(data))
  }

  /** Ends the cork taken in `state`; a socket moved on to another state is left alone. */
  uncork (state: Cork): void {
    if (this.#cork !== state) return
    this.#cork = Cork.none
    this.raw.uncork()
  }

  close (code: number, reason?: string): void { this.ws.close(code, reason) }
  terminate (): void { this.ws.terminate() }
  ping (): void { this.ws.ping() }
  get bufferedAmount (): number { return this.ws.bufferedAmount }
}
