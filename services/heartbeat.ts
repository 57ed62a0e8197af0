/** A tick at most this often: fine enough to spread the work, coarse enough to cost nothing. */
const tickMs = 100

/**
 * Visits every member once per period, a slice of them per tick. Pinging 100,000 sockets in
 * one tick stalls the event loop for tens of milliseconds, which every relayed frame in
 * flight then waits out; spread over the period, the same pings cost a fraction of a ms per
 * tick. Members are dealt round-robin into slices, so each is visited exactly once per round.
 * The timer runs only while there are members.
 */
export class Heartbeat<T> {
  readonly #slices: Array<Set<T>>
  readonly #sliceOf = new Map<T, number>()
  readonly #tickMs: number
  #dealt = 0
  #next = 0
  #timer: NodeJS.Timeout | undefined

  constructor (periodMs: number, readonly visit: (member: T) => void) {
    const slices = Math.max(1, Math.round(periodMs / tickMs))
    this.#tickMs = periodMs / slices
    this.#slices = Array.from({ length: slices }, () => new Set<T>())
  }

  get size (): number { return this.#sliceOf.size }
  get running (): boolean { return this.#timer !== undefined }

  add (member: T): void {
    if (this.#sliceOf.has(member)) return
    const slice = this.#dealt++ % this.#slices.length
    this.#slices[slice].add(member)
    this.#sliceOf.set(member, slice)
    this.#timer ??= setInterval(() => this.#tick(), this.#tickMs)
  }

  delete (member: T): void {
    const slice = this.#sliceOf.get(member)
    if (slice === undefined) return
    this.#slices[slice].delete(member)
    this.#sliceOf.delete(member)
    if (this.#sliceOf.size === 0) this.stop()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  #tick (): void {
    const slice = this.#slices[this.#next]
    this.#next = (this.#next + 1) % this.#slices.length
    for (const member of slice) this.visit(member)
  }
}
