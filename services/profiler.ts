// On-demand CPU profiles and heap snapshots of this very process through node:inspector, so an
// operator can look inside a running registry without a restart or a --cpu-prof flag.
import { Session } from 'node:inspector/promises'
import { PassThrough, type Readable } from 'node:stream'

/** A V8 CPU profile in the `.cpuprofile` format Chrome DevTools and speedscope open. */
export interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }, hitCount?: number, children?: number[] }>
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export class ProfilerBusyError extends Error {}

/**
 * One capture at a time: two overlapping sessions would share V8's single profiler and a
 * heap snapshot stops the world, so a second request is refused rather than queued.
 */
export class Profiler {
  #busy = false

  get busy (): boolean { return this.#busy }

  /** Samples the CPU for `ms` milliseconds at `intervalUs` and returns the profile. */
  async cpu (ms: number, intervalUs = 1000): Promise<CpuProfile> {
    const session = this.#open()
    try {
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: intervalUs })
      await session.post('Profiler.start')
      await new Promise(resolve => setTimeout(resolve, ms))
      const { profile } = await session.post('Profiler.stop')
      await session.post('Profiler.disable')
      return profile as CpuProfile
    } finally {
      this.#close(session)
    }
  }

  /**
   * A heap snapshot as a stream of its JSON text. V8 writes the whole snapshot while the
   * process is paused, so the chunks are buffered here and then drained by the caller.
   */
  async heap (): Promise<Readable> {
    const session = this.#open()
    const out = new PassThrough()
    try {
      session.on('HeapProfiler.addHeapSnapshotChunk', (m) => { out.write(m.params.chunk) })
      await session.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
      out.end()
      return out
    } catch (err) {
      out.destroy()
      throw err
    } finally {
      this.#close(session)
    }
  }

  #open (): Session {
    if (this.#busy) throw new ProfilerBusyError('a profile or heap snapshot is already being taken')
    this.#busy = true
    const session = new Session()
    session.connect()
    return session
  }

  #close (session: Session): void {
    session.disconnect()
    this.#busy = false
  }
}
