import { keys, projectKeys } from '../redis/keys.ts'
import type { RedisLink } from '../redis/link.ts'
import type { Peer } from './store.ts'

/**
 * This node's own peers, by project and by user: what it must put back whenever Redis lost
 * them (a FLUSHALL, a failover to an empty replica, or this node swept while cut off).
 */
export class LocalPeers {
  readonly projects = new Map<string, Map<string, Peer>>()
  readonly users = new Map<string, number>()

  add (projectId: string, peer: Peer): void {
    let peers = this.projects.get(projectId)
    if (peers === undefined) this.projects.set(projectId, peers = new Map())
    peers.set(peer.peerId, peer)
    this.users.set(peer.userId, (this.users.get(peer.userId) ?? 0) + 1)
  }

  /** Replaces a peer's record after an update; a peer no longer here is left alone. */
  set (projectId: string, peer: Peer): void {
    this.projects.get(projectId)?.set(peer.peerId, peer)
  }

  delete (projectId: string, peerId: string): Peer | undefined {
    const peers = this.projects.get(projectId)
    const peer = peers?.get(peerId)
    if (peers === undefined || peer === undefined) return undefined
    peers.delete(peerId)
    if (peers.size === 0) this.projects.delete(projectId)
    const n = (this.users.get(peer.userId) ?? 1) - 1
    if (n === 0) this.users.delete(peer.userId)
    else this.users.set(peer.userId, n)
    return peer
  }

  /** Every local peer back into Redis under `instance`: node sets, user slots, project hashes (announced as joins). */
  async reassert (link: RedisLink, instance: string): Promise<void> {
    const work: Array<Promise<unknown>> = []
    for (const [projectId, peers] of this.projects) {
      work.push(link.call('sadd', () => link.cmd.sadd(keys.nodeProjects(instance), projectId)))
      const args: string[] = [projectId, instance]
      for (const peer of peers.values()) {
        args.push(peer.peerId, JSON.stringify(peer))
        work.push(link.call('hset', () => link.cmd.hset(keys.user(peer.userId), peer.peerId, instance)))
      }
      work.push(link.script('reassert', projectKeys(projectId), args))
    }
    for (const userId of this.users.keys()) work.push(link.call('sadd', () => link.cmd.sadd(keys.nodeUsers(instance), userId)))
    await Promise.all(work)
  }
}
