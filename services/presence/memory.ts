import type { Bus } from '../bus/bus.ts'
import type { LeaveReason } from '../codes.ts'
import {
  peersOf, type AdmissionLimits, type JoinOutcome, type ListOutcome, type Peer, type PresenceEvent, type PresenceStore, type UpdateOutcome
} from './store.ts'

interface Entry { peer: Peer, nodeId: string }
interface Project { rev: number, peers: Map<string, Entry> }

/**
 * The embedded default: presence in this process, events on a (usually local) Bus. Every
 * method runs to completion synchronously, so each change and its rev are atomic.
 */
export class MemoryPresence implements PresenceStore {
  readonly #projects = new Map<string, Project>()
  readonly #connectionsByUser = new Map<string, number>()
  readonly #bus: Bus

  constructor (bus: Bus) {
    this.#bus = bus
  }

  join (projectId: string, peer: Peer, nodeId: string, limits: AdmissionLimits): JoinOutcome {
    const project = this.#projects.get(projectId)
    const userCount = this.#connectionsByUser.get(peer.userId) ?? 0
    if (userCount >= limits.maxConnectionsPerUser) {
      return { ok: false, code: 'too_many_connections', message: `user already holds ${userCount} connections` }
    }
    if (project !== undefined && project.peers.size >= limits.maxPeersPerProject) {
      return { ok: false, code: 'project_full', message: `project already holds ${project.peers.size} peers` }
    }
    const target = project ?? { rev: 0, peers: new Map() }
    if (project === undefined) this.#projects.set(projectId, target)
    const peers = peersOf(target.peers)
    target.peers.set(peer.peerId, { peer, nodeId })
    this.#connectionsByUser.set(peer.userId, userCount + 1)
    const rev = this.#announce(projectId, target, { type: 'peer-joined', peer, rev: 0 })
    return { ok: true, peers, rev }
  }

  async update (projectId: string, peer: Peer): Promise<UpdateOutcome> {
    const project = this.#projects.get(projectId)
    const entry = project?.peers.get(peer.peerId)
    if (project === undefined || entry === undefined) {
      return { ok: false, code: 'peer_not_found', message: `peer ${peer.peerId} is not online` }
    }
    entry.peer = peer
    const rev = this.#announce(projectId, project, { type: 'peer-updated', peer, rev: 0 })
    return { ok: true, rev }
  }

  async leave (projectId: string, peerId: string, reason: LeaveReason): Promise<void> {
    const project = this.#projects.get(projectId)
    const entry = project?.peers.get(peerId)
    if (project === undefined || entry === undefined) return
    project.peers.delete(peerId)
    const left = (this.#connectionsByUser.get(entry.peer.userId) ?? 1) - 1
    if (left === 0) this.#connectionsByUser.delete(entry.peer.userId)
    else this.#connectionsByUser.set(entry.peer.userId, left)
    this.#announce(projectId, project, { type: 'peer-left', peerId, reason, rev: 0 })
    // An empty project keeps no state: nobody holds its list, so its rev may restart.
    if (project.peers.size === 0) this.#projects.delete(projectId)
  }

  async list (projectId: string): Promise<ListOutcome> {
    const project = this.#projects.get(projectId)
    if (project === undefined) return { ok: true, peers: [], rev: 0 }
    return { ok: true, peers: peersOf(project.peers), rev: project.rev }
  }

  locate (projectId: string, peerId: string): string | undefined {
    return this.#projects.get(projectId)?.peers.get(peerId)?.nodeId
  }

  observe (): void {}
  forget (): void {}
  isAvailable (): boolean { return true }

  /** Projects and users still tracked; lets tests prove churn leaves nothing behind. */
  get size (): number { return this.#projects.size + this.#connectionsByUser.size }

  async close (): Promise<void> {
    this.#projects.clear()
    this.#connectionsByUser.clear()
  }

  #announce (projectId: string, project: Project, event: PresenceEvent): number {
    event.rev = ++project.rev
    this.#bus.toProject(projectId, { kind: 'presence', projectId, event })
    return event.rev
  }
}
