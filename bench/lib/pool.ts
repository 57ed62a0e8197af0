// The generator processes, as seen from bench/run.ts: forked once, pinned with the runner to
// the generator core, driven by one command at a time over IPC.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { root } from './procs.ts'
import type { Command, SetupResult, StepResult } from '../generator.ts'
import type { PeerSpec } from './protocols.ts'

export class Pool {
  readonly workers: ChildProcess[]
  /** Senders each worker holds since the last setup: a step's rate is split by them. */
  #senders: number[] = []

  constructor (count: number) {
    this.workers = Array.from({ length: count }, () => fork('bench/generator.ts', [], {
      cwd: root,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    }))
  }

  get size (): number { return this.workers.length }

  async #ask<T> (w: ChildProcess, cmd: Command): Promise<T> {
    const answer = once(w, 'message') as Promise<[T]>
    w.send(cmd)
    const [reply] = await answer
    return reply
  }

  /** Sends each worker its share of `peers` (a project never spans two workers). */
  async setup (base: Omit<Extract<Command, { cmd: 'setup' }>, 'cmd' | 'peers'>, peers: PeerSpec[]): Promise<SetupResult> {
    const shares: PeerSpec[][] = this.workers.map(() => [])
    const owner = new Map<string, number>()
    for (const p of peers) {
      let w = owner.get(p.project)
      if (w === undefined) owner.set(p.project, w = owner.size % this.size)
      shares[w].push(p)
    }
    const started = performance.now()
    const results = await Promise.all(this.workers.map(async (w, i) => await this.#ask<SetupResult>(w, { cmd: 'setup', ...base, peers: shares[i] })))
    this.#senders = results.map(r => r.senders)
    return {
      connected: results.reduce((a, r) => a + r.connected, 0),
      failed: results.reduce((a, r) => a + r.failed, 0),
      errors: results.flatMap(r => r.errors).slice(0, 5),
      ms: performance.now() - started,
      unsupported: results.some(r => r.unsupported === true),
      senders: this.#senders.reduce((a, b) => a + b, 0)
    }
  }

  /** Runs one open-loop step; `rate` is the total, split over the workers by their senders. */
  async step (cmd: Omit<Extract<Command, { cmd: 'step' }>, 'cmd'>): Promise<StepResult[]> {
    const total = this.#senders.reduce((a, b) => a + b, 0)
    return await Promise.all(this.workers.map(async (w, i) => await this.#ask<StepResult>(w, {
      cmd: 'step', ...cmd, rate: total === 0 ? 0 : cmd.rate * this.#senders[i] / total
    })))
  }

  async teardown (): Promise<void> {
    await Promise.all(this.workers.map(async w => await this.#ask(w, { cmd: 'teardown' })))
  }

  close (): void {
    for (const w of this.workers) if (w.connected) w.disconnect()
  }
}
