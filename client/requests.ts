// Frames that expect a reply carry an `id`; the reply (`ack`, `pong`, `peers` or `error`)
// settles the matching promise, and nothing waits forever (PROTOCOL.md §3).
import { RegistryError } from './errors.ts'
import type { FrameErrorCode, ServerFrame } from './protocol.ts'

interface Waiter {
  resolve: (frame: ServerFrame) => void
  reject: (err: RegistryError) => void
  timer: ReturnType<typeof setTimeout>
}

export class Requests {
  readonly #waiting = new Map<string, Waiter>()
  #seq = 0

  /** A fresh id and the promise of its reply; `send` writes the frame once the id is armed. */
  start (timeoutMs: number, send: (id: string) => void): Promise<ServerFrame> {
    const id = (++this.#seq).toString(36)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(new RegistryError('timeout', `no reply within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiting.set(id, { resolve, reject, timer })
      try {
        send(id)
      } catch (err) {
        const e = err instanceof RegistryError ? err : new RegistryError('disconnected', err instanceof Error ? err.message : 'send failed')
        this.#settle(id)?.reject(e)
      }
    })
  }

  /** An `ack`, `pong` or `peers` reply; false when nobody waits for it. */
  resolve (id: string, frame: ServerFrame): boolean {
    const w = this.#settle(id)
    w?.resolve(frame)
    return w !== undefined
  }

  /** An `error` reply; false when nobody waits for it (the caller reports it otherwise). */
  reject (id: string, code: FrameErrorCode, message: string): boolean {
    const w = this.#settle(id)
    w?.reject(new RegistryError(code, message))
    return w !== undefined
  }

  /** The connection is gone: an `ack` can no longer come, so nobody waits for the timeout. */
  rejectAll (err: RegistryError): void {
    for (const id of [...this.#waiting.keys()]) this.#settle(id)?.reject(err)
  }

  #settle (id: string): Waiter | undefined {
    const w = this.#waiting.get(id)
    if (w === undefined) return undefined
    this.#waiting.delete(id)
    clearTimeout(w.timer)
    return w
  }
}
