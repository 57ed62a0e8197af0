/** A tick at most this often: fine enough to spread the work, coarse enough to cost nothing. */
const tickMs = 100

/**
 * Visits every member once per period, a slice of them per tick. Pinging 100,000 sockets in
 * one tick stalls the event loop for tens of milliseconds, which every relayed frame in
 * flight then waits out; spread over the period, the same pings cost a fraction of a ms per
 * tick. A round walks the members in the order they joined, a period's share of them per
 * tick; a Set's iterator stays valid as members come and go, so each member is one entry of
 * one Set, not an entry in a slice and another recording which slice.
 * The timer runs only while there are members.
 */
export class Heartbeat<T> {
  readonly #members = new Set<T>()
  readonly #slices: number
  readonly #tickMs: number
  #round: Iterator<T> | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (periodMs: number, readonly visit: (member: T) => void) {
    this.#slices = Math.max(1, Math.round(periodMs / tickMs))
    this.#tickMs = periodMs / this.#slices
  }

  get size (): number { return this.#members.size }
  get running (): boolean { return this.#timer !== undefined }

  add (member: T): void {
    this.#members.add(member)
    this.#timer ??= setInterval(() => this.#tick(), this.#tickMs)
  }

  delete (member: T): void {
    if (this.#members.delete(member) && this.#members.size === 0) this.stop()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#round = undefined
  }

  #tick (): void {
    let left = Math.ceil(this.#members.size / this.#slices)
    // A local iterator: a visit may delete members, the last of them too, which stops us.
    let round = this.#round ?? this.#members.values()
    while (left-- > 0) {
      let next = round.next()
      if (next.done === true) {
        // The round is over: the next one starts here, a period after this one did.
        round = this.#members.values()
        next = round.next()
        if (next.done === true) break
      }
      this.visit(next.value)
    }
    this.#round = this.#timer === undefined ? undefined : round
  }
}
