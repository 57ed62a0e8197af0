// The two Redis connections a node holds (commands, subscriptions) and whether the cluster is
// reachable. Nothing waits on an offline queue: a command either runs now, within a short
// timeout, or fails; the relay path only publishes while the link is up (DESIGN.md
// "Connections", PROTOCOL.md §3 "Cluster unreachable").
import { batch } from './keys.ts'
import { lua, sha, type ScriptName } from './scripts.ts'

/**
 * After a publish, the next one waits until this long has passed: a quiet node publishes at
 * the end of the turn, a busy one once a millisecond with everything of that millisecond.
 * A publish costs a write here, a read and a fan-out in Redis, and a read on every subscribed
 * node, whatever its size; a turn rarely holds more than one message, a millisecond at
 * 10,000 msg/s holds ten.
 */
const publishWindowMs = 1

/** The little of an ioredis client (standalone or Cluster) the registry uses. */
export interface RedisClient {
  readonly status: string
  on (event: string, listener: (...args: unknown[]) => void): unknown
  off (event: string, listener: (...args: unknown[]) => void): unknown
  evalsha (sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  eval (script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  spublish (channel: string, message: string): Promise<unknown>
  ssubscribe (...channels: string[]): Promise<unknown>
  sunsubscribe (...channels: string[]): Promise<unknown>
  sadd (key: string, ...members: string[]): Promise<unknown>
  srem (key: string, ...members: string[]): Promise<unknown>
  smembers (key: string): Promise<string[]>
  hset (key: string, field: string, value: string): Promise<unknown>
  hdel (key: string, ...fields: string[]): Promise<unknown>
  zrem (key: string, ...members: string[]): Promise<unknown>
  del (...keys: string[]): Promise<unknown>
}

/** Metrics hooks; the link knows nothing of Prometheus. */
export interface RedisObserver {
  roundTrip? (command: string, seconds: number): void
  published? (): void
  received? (): void
  reconnected? (): void
}

export interface LinkOptions {
  commandTimeoutMs?: number
  observer?: RedisObserver
  log?: { warn (obj: object, msg?: string): void, info (obj: object, msg?: string): void }
}

type Task = () => Promise<void>

/**
 * Up means: both connections ready and every recovery task (re-subscribe, re-register,
 * re-assert) done since they last were. Only then does the node take peers or relay.
 */
export class RedisLink {
  readonly cmd: RedisClient
  readonly sub: RedisClient
  readonly observer: RedisObserver
  readonly #timeoutMs: number
  readonly #log: LinkOptions['log']
  readonly #tasks: Task[] = []
  readonly #onChange = (): void => { this.#check() }
  #up = false
  #started = false
  #recovering: Promise<void> | undefined
  #closed = false
  /** Bumped on every lost connection, so a recovery that raced a new loss runs again. */
  #generation = 0
  #retry: NodeJS.Timeout | undefined

  constructor (cmd: RedisClient, sub: RedisClient, opts: LinkOptions = {}) {
    this.cmd = cmd
    this.sub = sub
    this.observer = opts.observer ?? {}
    this.#timeoutMs = opts.commandTimeoutMs ?? 1000
    this.#log = opts.log
    for (const c of [cmd, sub]) {
      for (const e of ['ready', 'close', 'end']) c.on(e, this.#onChange)
      // Connection errors surface as status changes above; the event itself must not crash.
      c.on('error', this.#onError)
    }
  }

  /** One line per outage, not one per reconnect attempt. */
  readonly #onError = (err: unknown): void => {
    if (this.#errorLogged) return
    this.#errorLogged = true
    this.#log?.warn({ err }, 'redis connection error; retrying')
  }

  #errorLogged = false

  get connected (): boolean { return this.cmd.status === 'ready' && this.sub.status === 'ready' }
  get available (): boolean { return this.#up && !this.#closed && this.connected }

  /** Runs on every (re)connection, in order, before the link counts as up. */
  onRecover (task: Task): void { this.#tasks.push(task) }

  /** Brings the link up for the first time; rejects when Redis does not answer. */
  async start (): Promise<void> {
    this.#started = true
    await this.#recover()
    if (!this.#up) throw new Error('redis did not answer')
  }

  /** A command timed out: stop taking work until a recovery succeeds (a cut-off Redis never closes the socket). */
  degraded (): void {
    if (!this.#up) return
    this.#up = false
    this.#log?.warn({}, 'redis is not answering; refusing cluster work until it does')
    this.#schedule()
  }

  /**
   * Fire and forget: false at once when the link is down (then the message is never sent).
   * Messages to one channel within one publish window leave as one SPUBLISH (see `batch`
   * and `publishWindowMs`): under load that divides Redis commands, and the receiving
   * node's events, by the batch size. Any other command first flushes them, so Redis sees
   * every command in the order it was issued (a peer's last broadcast before the script
   * announcing its leave).
   */
  publish (channel: string, payload: string): boolean {
    if (!this.available) return false
    const pending = this.#batches.get(channel)
    if (pending !== undefined) pending.push(payload)
    else this.#batches.set(channel, [payload])
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      const wait = this.#lastFlush + publishWindowMs - performance.now()
      if (wait <= 0) setImmediate(this.#scheduledFlush)
      else setTimeout(this.#scheduledFlush, wait)
    }
    this.observer.published?.()
    return true
  }

  /**
   * Replaced at each flush, never cleared: V8's Map.clear() on a Map old enough to live in the
   * old generation allocates the new table there and leaves the cleared one holding its
   * entries, which every scavenge until the next full GC then treats as live. On a node
   * publishing 10,000 msg/s, V8's heap sampler counted 23 MB of payload strings surviving
   * scavenges in 3 s that way; with a fresh Map, 3 MB.
   */
  #batches = new Map<string, string[]>()
  #flushScheduled = false
  #lastFlush = -Infinity
  readonly #scheduledFlush = (): void => {
    this.#flushScheduled = false
    this.#flush()
  }

  #flush (): void {
    const batches = this.#batches
    if (batches.size === 0) return
    this.#batches = new Map()
    this.#lastFlush = performance.now()
    for (const [channel, payloads] of batches) this.cmd.spublish(channel, batch(payloads)).catch(() => {})
  }

  /** Runs a script of scripts.ts, timed, falling back to EVAL once per Redis that lacks it. */
  async script (name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
    return await this.call(name, async () => {
      try {
        return await this.cmd.evalsha(sha[name], keys.length, ...keys, ...args)
      } catch (err) {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
        return await this.cmd.eval(lua[name], keys.length, ...keys, ...args)
      }
    })
  }

  /** One command with a deadline, so no caller waits on a dead Redis longer than the timeout. */
  async call<T> (name: string, run: () => Promise<T>): Promise<T> {
    this.#flush()
    const started = process.hrtime.bigint()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`redis ${name} timed out after ${this.#timeoutMs} ms`)), this.#timeoutMs)
    })
    try {
      return await Promise.race([run(), deadline])
    } finally {
      clearTimeout(timer)
      this.observer.roundTrip?.(name, Number(process.hrtime.bigint() - started) / 1e9)
    }
  }

  close (): void {
    this.#closed = true
    this.#up = false
    clearTimeout(this.#retry)
    for (const c of [this.cmd, this.sub]) for (const e of ['ready', 'close', 'end']) c.off(e, this.#onChange)
    // Keep swallowing errors: the owner may still be quitting the clients.
  }

  #check (): void {
    if (this.#closed || !this.#started) return
    if (!this.connected) {
      if (this.#up) this.#log?.warn({}, 'redis connection lost')
      this.#up = false
      this.#generation++
      return
    }
    if (!this.#up && this.#recovering === undefined) {
      this.observer.reconnected?.()
      this.#recover().catch(() => {})
    }
  }

  async #recover (): Promise<void> {
    if (this.#closed) return
    if (this.#recovering !== undefined) return await this.#recovering
    this.#recovering = this.#runRecovery()
    try {
      await this.#recovering
    } finally {
      this.#recovering = undefined
    }
  }

  async #runRecovery (): Promise<void> {
    const generation = this.#generation
    try {
      for (const task of this.#tasks) await task()
      this.#up = this.connected && generation === this.#generation
      if (this.#up) {
        this.#errorLogged = false
        this.#log?.info({}, 'redis link up')
      } else this.#schedule()
    } catch (err) {
      this.#log?.warn({ err }, 'redis recovery failed; retrying')
      this.#schedule()
    }
  }

  #schedule (): void {
    if (this.#closed || this.#retry !== undefined) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.connected && !this.#up) this.#recover().catch(() => {})
    }, 250)
  }
}
