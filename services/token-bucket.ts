/**
 * PROTOCOL.md §4 rate limit: a token bucket refilled lazily from a clock, so an idle
 * connection costs no timer. It also remembers the current run of drops, which decides the
 * 1008 close: still dropping `closeAfterMs` after the first drop, with no 1 s gap.
 */
export class TokenBucket {
  #tokens: number
  #last: number
  #firstDrop = 0
  #lastDrop = -Infinity

  constructor (readonly perSec: number, readonly burst: number, now: number) {
    this.#tokens = burst
    this.#last = now
  }

  /** 'ok': take it; 'drop': refuse this frame; 'close': the abuse has lasted too long. */
  take (now: number, closeAfterMs: number): 'ok' | 'drop' | 'close' {
    const elapsed = now - this.#last
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + elapsed * this.perSec / 1000)
      this.#last = now
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return 'ok'
    }
    if (now - this.#lastDrop >= 1000) this.#firstDrop = now
    this.#lastDrop = now
    return now - this.#firstDrop >= closeAfterMs ? 'close' : 'drop'
  }
}
