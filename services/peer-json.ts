import type { Peer } from './frames.ts'

/**
 * Each listed peer's JSON, made once. A welcome lists every peer already in the project, so a
 * project filling up serializes each of its peers again for every later joiner: 1,000 joins
 * (the default maxPeersPerProject) stringify ~500,000 peers, ~200 ms that block the loop
 * (measured alone); joined from strings made once, ~12 ms. A peer is never changed in place
 * (a meta update makes a new one), so a string never goes stale; it lives as long as its peer.
 */
const made = new WeakMap<Peer, string>()

/** Below this, a list is serialized whole: the strings would cost memory for no gain. */
const cacheFrom = 16

function peerJson (peer: Peer): string {
  let json = made.get(peer)
  if (json === undefined) {
    json = JSON.stringify(peer)
    made.set(peer, json)
  }
  return json
}

/** `JSON.stringify(peers)`, from each peer's string made once when the list is long. */
export function peerListJson (peers: readonly Peer[]): string {
  if (peers.length < cacheFrom) return JSON.stringify(peers)
  let json = '[' + peerJson(peers[0])
  for (let i = 1; i < peers.length; i++) json += ',' + peerJson(peers[i])
  return json + ']'
}

/** Peers read back from their stored JSON (the Redis store's entries): a long list keeps each string, so its welcome needs no stringify. */
export function parsePeers (jsons: readonly string[]): Peer[] {
  const keep = jsons.length >= cacheFrom
  const peers: Peer[] = []
  for (const json of jsons) {
    const peer = JSON.parse(json) as Peer
    if (keep) made.set(peer, json)
    peers.push(peer)
  }
  return peers
}
