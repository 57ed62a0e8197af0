// The two clocks of a live session: the heartbeat that notices a dead connection, and the
// timer that refreshes the token before the server would close with 4001.

/**
 * PROTOCOL.md §4 heartbeat, seen from the client: silence for two intervals means the
 * connection is dead. Node's `ws` shows the server's pings; a browser hides them, so when
 * idle it sends an application `ping` whose `pong` counts as traffic.
 */
export class Heartbeat {
  #seen = Date.now()
  #pinged = false
  readonly #timer: ReturnType<typeof setInterval>

  constructor (intervalMs: number, pingsVisible: boolean, ping: () => void, dead: (idleMs: number) => void) {
    this.#timer = setInterval(() => {
      const idle = Date.now() - this.#seen
      if (idle >= 2 * intervalMs) {
        this.stop()
        dead(idle)
      } else if (idle >= intervalMs && !pingsVisible && !this.#pinged) {
        this.#pinged = true
        ping()
      }
    }, Math.max(10, Math.floor(intervalMs / 2)))
  }

  /** Anything heard from the server: a frame, or a ping where pings are visible. */
  traffic (): void {
    this.#seen = Date.now()
    this.#pinged = false
  }

  stop (): void { clearInterval(this.#timer) }
}

const maxTimer = 2 ** 31 - 1

/**
 * Runs the refresh `beforeMs` ahead of the token's expiry, or halfway there when the token
 * lives shorter than that, so a short-lived token is never refreshed in a tight loop.
 */
export class RefreshTimer {
  #timer: ReturnType<typeof setTimeout> | undefined
  #exp: number | undefined

  constructor (readonly beforeMs: number, readonly run: () => void) {}

  /** `exp` in ms since the epoch; undefined (a token without `exp`) schedules nothing. */
  schedule (exp: number | undefined, floorMs = 0): void {
    this.stop()
    this.#exp = exp
    if (exp === undefined) return
    const left = exp - Date.now()
    const delay = Math.max(floorMs, left - this.beforeMs, left / 2)
    this.#timer = setTimeout(this.run, Math.min(delay, maxTimer))
  }

  /** After a failed refresh: again halfway to the same expiry, but not sooner than in 1 s. */
  retry (): void { this.schedule(this.#exp, 1000) }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
