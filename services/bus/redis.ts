import type { Bus, BusHandler, BusMessage } from './bus.ts'
import { decode, encode, keys, unbatch } from '../redis/keys.ts'
import type { RedisLink } from '../redis/link.ts'

export interface RedisBusOptions {
  /**
   * Re-subscribe every channel ourselves once the subscriber is back (standalone Redis). A
   * Redis Cluster client re-subscribes its shard connections by itself.
   */
  resubscribe: boolean
}

/**
 * Sharded pub/sub (SPUBLISH/SSUBSCRIBE): one channel per node for directed signals, one per
 * project for broadcasts and presence events, subscribed only while this node has peers
 * there. Publishing never awaits Redis: a message is handed to the connection now, or
 * refused when the link is down, so a caller can answer `unavailable` at once.
 */
export class RedisBus implements Bus {
  readonly #link: RedisLink
  readonly #channels = new Map<string, Set<BusHandler>>()
  readonly #onMessage = (...args: unknown[]): void => { this.#receive(String(args[0]), String(args[1])) }

  constructor (link: RedisLink, opts: RedisBusOptions) {
    this.#link = link
    link.sub.on('smessage', this.#onMessage)
    if (opts.resubscribe) link.onRecover(() => this.#resubscribe())
  }

  toNode (nodeId: string, msg: BusMessage): boolean {
    return this.#link.publish(keys.nodeChannel(nodeId), encode(msg))
  }

  toProject (projectId: string, msg: BusMessage): boolean {
    return this.#link.publish(keys.projectChannel(projectId), encode(msg))
  }

  async subscribeNode (nodeId: string, handler: BusHandler): Promise<void> {
    await this.#subscribe(keys.nodeChannel(nodeId), handler)
  }

  async subscribeProject (projectId: string, handler: BusHandler): Promise<void> {
    await this.#subscribe(keys.projectChannel(projectId), handler)
  }

  async unsubscribeNode (nodeId: string, handler: BusHandler): Promise<void> {
    await this.#unsubscribe(keys.nodeChannel(nodeId), handler)
  }

  async unsubscribeProject (projectId: string, handler: BusHandler): Promise<void> {
    await this.#unsubscribe(keys.projectChannel(projectId), handler)
  }

  /** Channels subscribed; lets tests prove nothing is left behind. */
  get size (): number { return this.#channels.size }

  async close (): Promise<void> {
    this.#link.sub.off('smessage', this.#onMessage)
    this.#channels.clear()
  }

  async #subscribe (channel: string, handler: BusHandler): Promise<void> {
    let handlers = this.#channels.get(channel)
    if (handlers === undefined) this.#channels.set(channel, handlers = new Set())
    handlers.add(handler)
    // Resolves once Redis confirmed: from then on no message of the channel is missed.
    if (handlers.size === 1) await this.#link.call('ssubscribe', () => this.#link.sub.ssubscribe(channel))
  }

  async #unsubscribe (channel: string, handler: BusHandler): Promise<void> {
    const handlers = this.#channels.get(channel)
    if (handlers === undefined || !handlers.delete(handler) || handlers.size > 0) return
    this.#channels.delete(channel)
    // A dead connection took the subscription with it; nothing to undo then.
    await this.#link.call('sunsubscribe', () => this.#link.sub.sunsubscribe(channel)).catch(() => {})
  }

  async #resubscribe (): Promise<void> {
    const sub = this.#link.sub
    await Promise.all(Array.from(this.#channels.keys(), ch => this.#link.call('ssubscribe', () => sub.ssubscribe(ch))))
  }

  #receive (channel: string, payload: string): void {
    const handlers = this.#channels.get(channel)
    if (handlers === undefined) return
    for (const one of unbatch(payload)) {
      this.#link.observer.received?.()
      const msg = decode(one)
      if (msg === undefined) continue
      for (const h of handlers) h(msg)
    }
  }
}
