// Redis names of DESIGN.md "Redis data model". Every key and channel of a project shares the
// project's hash tag, so one Lua script touches them atomically and Redis Cluster keeps them
// (and the project's broadcasts) on one shard; a node's channel is tagged by the node.
import type { BusMessage } from '../bus/bus.ts'
import type { PresenceEvent } from '../presence/store.ts'

/**
 * A node registers as an *instance*, `<nodeId>~<random>`, renewed each time Redis lost it, so
 * a late sweep of the old instance never removes what the node re-asserted. Routing and
 * everything above presence see the plain node id (node ids cannot hold `~`).
 */
export function nodeOf (instance: string): string {
  const at = instance.indexOf('~')
  return at < 0 ? instance : instance.slice(0, at)
}

export const keys = {
  /** ZSET instance → liveness expiry (ms, Redis clock); `~instance` while it is being swept. */
  nodes: 'wsp:nodes',
  /** HASH peerId → `<instance>|<peer JSON>`. */
  peers: (projectId: string) => `wsp:{${projectId}}:peers`,
  rev: (projectId: string) => `wsp:{${projectId}}:rev`,
  /** Set when the project's keys are created: a new epoch means `rev` restarted. */
  epoch: (projectId: string) => `wsp:{${projectId}}:epoch`,
  projectChannel: (projectId: string) => `wsp:{${projectId}}:ch`,
  /** SET of the projects where the instance has peers, so a sweeper knows where to look. */
  nodeProjects: (instance: string) => `wsp:node:{${instance}}:projects`,
  /** SET of the users the instance holds connections of. */
  nodeUsers: (instance: string) => `wsp:node:{${instance}}:users`,
  nodeChannel: (nodeId: string) => `wsp:node:{${nodeId}}:ch`,
  /** HASH peerId → instance: the user's connections, for the cluster-wide per-user limit. */
  user: (userId: string) => `wsp:user:{${userId}}:peers`
}

/** The four keys every project script takes, in this order. */
export function projectKeys (projectId: string): string[] {
  return [keys.peers(projectId), keys.rev(projectId), keys.epoch(projectId), keys.projectChannel(projectId)]
}

/**
 * Bus payloads are `kind|field|…|rest`: the frame (already serialized by the sender) is the
 * unparsed tail, so a relay never parses nor re-serializes `data`. Project and node ids and
 * peer ids cannot hold `|` (their patterns forbid it); the tail may.
 */
export function encode (msg: BusMessage): string {
  switch (msg.kind) {
    case 'signal': return `s|${msg.projectId}|${msg.to}|${msg.frame}`
    case 'broadcast': return `b|${msg.projectId}|${msg.from}|${msg.origin}|${msg.frame}`
    case 'presence': return `p|${msg.projectId}|${msg.source?.epoch ?? '0'}|${msg.source?.nodeId ?? ''}|${JSON.stringify(msg.event)}`
  }
}

export function decode (payload: string): BusMessage | undefined {
  const parts = splitN(payload, payload[0] === 's' ? 4 : 5)
  if (parts === undefined) return undefined
  switch (parts[0]) {
    case 's': return { kind: 'signal', projectId: parts[1], to: parts[2], frame: parts[3] }
    case 'b': return { kind: 'broadcast', projectId: parts[1], from: parts[2], origin: parts[3], frame: parts[4] }
    case 'p': return { kind: 'presence', projectId: parts[1], source: { epoch: parts[2], nodeId: nodeOf(parts[3]) }, event: JSON.parse(parts[4]) as PresenceEvent }
  }
  return undefined
}

/**
 * Several payloads of one channel as one message: `m|` then `<length>|<payload>` for each
 * (lengths in UTF-16 code units, as both ends measure them). A lone payload goes as it is.
 */
export function batch (payloads: string[]): string {
  if (payloads.length === 1) return payloads[0]
  let out = 'm|'
  for (const p of payloads) out += `${p.length}|${p}`
  return out
}

/** The payloads a message carries, in order; a malformed batch yields what came before the fault. */
export function unbatch (message: string): string[] {
  if (!message.startsWith('m|')) return [message]
  const out: string[] = []
  let at = 2
  while (at < message.length) {
    const bar = message.indexOf('|', at)
    const length = bar < 0 ? NaN : Number(message.slice(at, bar))
    if (!Number.isInteger(length) || length < 0 || bar + 1 + length > message.length) break
    out.push(message.slice(bar + 1, bar + 1 + length))
    at = bar + 1 + length
  }
  return out
}

/** Splits on the first n-1 `|`; undefined when there are fewer. */
function splitN (text: string, n: number): string[] | undefined {
  const out: string[] = []
  let from = 0
  for (let i = 1; i < n; i++) {
    const at = text.indexOf('|', from)
    if (at < 0) return undefined
    out.push(text.slice(from, at))
    from = at + 1
  }
  out.push(text.slice(from))
  return out
}

/** A stored hash value `<instance>|<peer JSON>`, with the instance's plain node id. */
export function parseEntry (value: string): { nodeId: string, json: string } {
  const at = value.indexOf('|')
  return { nodeId: nodeOf(value.slice(0, at)), json: value.slice(at + 1) }
}
