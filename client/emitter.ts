/** A tiny typed event emitter: no Node `events` in the browser, and a throwing listener never breaks the client. */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(payload: never) => void>>()

  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof Events> (event: E, fn: (payload: Events[E]) => void): () => void {
    let set = this.#listeners.get(event)
    if (set === undefined) this.#listeners.set(event, set = new Set())
    set.add(fn)
    return () => this.off(event, fn)
  }

  off<E extends keyof Events> (event: E, fn: (payload: Events[E]) => void): void {
    this.#listeners.get(event)?.delete(fn)
  }

  protected emit<E extends keyof Events> (event: E, payload: Events[E]): void {
    const set = this.#listeners.get(event)
    if (set === undefined) return
    for (const fn of [...set] as Array<(payload: Events[E]) => void>) {
      try {
        fn(payload)
      } catch (err) {
        // A listener's bug must not stop the others or the connection; report it asynchronously.
        setTimeout(() => { throw err }, 0)
      }
    }
  }
}
