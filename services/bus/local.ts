import type { Bus, BusHandler, BusMessage } from './bus.ts'

/**
 * The in-process Bus of the embedded default. Several hubs may share one, which is how tests
 * model a cluster without Redis. Delivery is synchronous, so per-pair order holds trivially.
 */
export class LocalBus implements Bus {
  readonly #nodes = new Map<string, Set<BusHandler>>()
  readonly #projects = new Map<string, Set<BusHandler>>()

  toNode (nodeId: string, msg: BusMessage): boolean {
    deliver(this.#nodes.get(nodeId), msg)
    return true
  }

  toProject (projectId: string, msg: BusMessage): boolean {
    deliver(this.#projects.get(projectId), msg)
    return true
  }

  async subscribeNode (nodeId: string, handler: BusHandler): Promise<void> { add(this.#nodes, nodeId, handler) }
  async subscribeProject (projectId: string, handler: BusHandler): Promise<void> { add(this.#projects, projectId, handler) }
  async unsubscribeNode (nodeId: string, handler: BusHandler): Promise<void> { remove(this.#nodes, nodeId, handler) }
  async unsubscribeProject (projectId: string, handler: BusHandler): Promise<void> { remove(this.#projects, projectId, handler) }

  /** Channels with at least one subscriber; lets tests prove nothing is left behind. */
  get size (): number { return this.#nodes.size + this.#projects.size }

  async close (): Promise<void> {
    this.#nodes.clear()
    this.#projects.clear()
  }
}

function deliver (handlers: Set<BusHandler> | undefined, msg: BusMessage): void {
  if (handlers === undefined) return
  for (const h of handlers) h(msg)
}

function add (map: Map<string, Set<BusHandler>>, key: string, handler: BusHandler): void {
  let set = map.get(key)
  if (set === undefined) map.set(key, set = new Set())
  set.add(handler)
}

function remove (map: Map<string, Set<BusHandler>>, key: string, handler: BusHandler): void {
  const set = map.get(key)
  if (set === undefined) return
  set.delete(handler)
  if (set.size === 0) map.delete(key)
}
