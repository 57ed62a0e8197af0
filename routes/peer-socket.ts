import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { PeerSocket } from '../services/session.ts'

const textFrame = { binary: false }

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
  constructor (readonly ws: WebSocket, readonly raw: Socket) {}

  send (data: string | Buffer, deferrable = false): void {
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
    this.ws.send(data, textFrame)
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
