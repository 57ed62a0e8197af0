// An embedded store that can be switched off, to reach the `unavailable` answers of
// PROTOCOL.md §2 #5, §3 and §5 without Redis.
import { LocalBus } from '../../services/bus/local.ts'
import type { BusMessage } from '../../services/bus/bus.ts'
import { MemoryPresence } from '../../services/presence/memory.ts'
import type { ListOutcome, Peer, UpdateOutcome } from '../../services/presence/store.ts'

const down = { ok: false as const, code: 'unavailable' as const, message: 'store switched off by the test' }

export class SwitchableBus extends LocalBus {
  /** When false, broadcasts and directed signals are refused as by an unreachable cluster. */
  up = true
  toNode (nodeId: string, msg: BusMessage): boolean { return this.up ? super.toNode(nodeId, msg) : false }
  toProject (projectId: string, msg: BusMessage): boolean {
    if (!this.up && msg.kind !== 'presence') return false
    return super.toProject(projectId, msg)
  }
}

export class SwitchablePresence extends MemoryPresence {
  up = true
  /** Makes `update` throw, to reach the `internal` error. */
  failUpdates = false
  isAvailable (): boolean { return this.up }
  async list (projectId: string): Promise<ListOutcome> { return this.up ? await super.list(projectId) : down }
  async update (projectId: string, peer: Peer): Promise<UpdateOutcome> {
    if (this.failUpdates) throw new Error('update failed (test)')
    return this.up ? await super.update(projectId, peer) : down
  }
}

export function switchableStore (): { presence: SwitchablePresence, bus: SwitchableBus } {
  const bus = new SwitchableBus()
  return { presence: new SwitchablePresence(bus), bus }
}
