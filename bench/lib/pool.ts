// The generator processes, as seen from bench/run.ts: forked once, pinned with the runner to
// the generator core, driven by one command at a time over IPC.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { root } from './procs.ts'
import type { Command, SetupResult, StepResult } from '../generator.ts'
import type { PeerSpec, TargetKind } from './protocols.ts'

export type ConnectResult = Omit<SetupResult, 'from' | 'to'> & { ms: number }
type Connect = Omit<Extract<Command, { cmd: 'setup' }>, 'cmd' | 'addresses'> & { sourceAddresses: number }

/**
 * Loopback source addresses for one connect phase, a new block each time. Each connection binds
 * its address with an ephemeral port, and the port a closed connection used stays in TIME_WAIT
 * for 60 s: reusing one address for the next phase (or a few addresses for 20,000 peers) fills
 * its port range, and bind() has to search it for a free port. With eight addresses reused,
 * connect phases ran up to 5× slower at random, the generator's core saturated and the
 * server's idle.
 */
function sourceBlock (block: number, count: number): string[] {
  if (count < 1 || count > 254) throw new Error('sourceAddresses: 1 to 254')
  return Array.from({ length: count }, (_, i) => `127.${1 + block % 254}.0.${i + 1}`)
}

export class Pool {
  readonly workers: ChildProcess[]
  readonly #ready: Promise<unknown>
  #blocks = 0
  /** Senders each worker holds since the last setup: a step's rate is split by them. */
  #senders: number[] = []

  /** `nodeFlags`: for looking into the generators (e.g. --cpu-prof), as --server-flags does for servers. */
  constructor (count: number, nodeFlags: string[] = []) {
    this.workers = Array.from({ length: count }, () => fork('bench/generator.ts', [], {
      cwd: root,
      execArgv: ['--import', 'tsx', ...nodeFlags],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    }))
    this.#ready = Promise.all(this.workers.map(async w => await once(w, 'message')))
  }

  get size (): number { return this.workers.length }

  async #ask<T> (w: ChildProcess, cmd: Command): Promise<T> {
    await this.#ready
    const answer = once(w, 'message') as Promise<[T]>
    w.send(cmd)
    const [reply] = await answer
    return reply
  }

  /** Gives each worker its share of `peers` (a project never spans two workers), tokens minted. */
  async prepare (kind: TargetKind, peers: PeerSpec[]): Promise<void> {
    const shares: PeerSpec[][] = this.workers.map(() => [])
    const owner = new Map<string, number>()
    for (const p of peers) {
      let w = owner.get(p.project)
      if (w === undefined) owner.set(p.project, w = owner.size % this.size)
      shares[w].push(p)
    }
    await Promise.all(this.workers.map(async (w, i) => await this.#ask(w, { cmd: 'prepare', kind, peers: shares[i] })))
  }

  /**
   * Connects the prepared peers; `ms` spans the first worker's first connection to the last
   * worker's last one, nothing before or after.
   */
  async connect ({ sourceAddresses, ...opts }: Connect): Promise<ConnectResult> {
    const addresses = sourceBlock(this.#blocks++, sourceAddresses)
    const results = await Promise.all(this.workers.map(async w => await this.#ask<SetupResult>(w, { cmd: 'setup', ...opts, addresses })))
    this.#senders = results.map(r => r.senders)
    return {
      connected: results.reduce((a, r) => a + r.connected, 0),
      failed: results.reduce((a, r) => a + r.failed, 0),
      errors: results.flatMap(r => r.errors).slice(0, 5),
      ms: Math.max(...results.map(r => r.to)) - Math.min(...results.map(r => r.from)),
      unsupported: results.some(r => r.unsupported === true),
      senders: this.#senders.reduce((a, b) => a + b, 0)
    }
  }

  async setup (opts: Connect & { kind: TargetKind }, peers: PeerSpec[]): Promise<ConnectResult> {
    const { kind, ...rest } = opts
    await this.prepare(kind, peers)
    return await this.connect(rest)
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
