// The Lua scripts of DESIGN.md "Redis data model". A project script takes projectKeys():
// KEYS[1] peers hash, KEYS[2] rev, KEYS[3] epoch, KEYS[4] the project's channel; it changes
// the hash, INCRs the rev and SPUBLISHes the event in one atomic step, so event order is rev
// order by construction and no event is ever announced twice.
import { createHash } from 'node:crypto'

const project = `
local function epoch()
  local e = redis.call('GET', KEYS[3])
  if not e then
    local t = redis.call('TIME')
    e = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', KEYS[3], e)
  end
  return e
end
local function announce(body, node)
  local e = epoch()
  local rev = redis.call('INCR', KEYS[2])
  redis.call('SPUBLISH', KEYS[4], 'p|' .. ARGV[1] .. '|' .. e .. '|' .. node .. '|' .. body .. ',"rev":' .. rev .. '}')
  return rev
end
local function left(peerId, reason)
  return announce('{"type":"peer-left","peerId":' .. cjson.encode(peerId) .. ',"reason":"' .. reason .. '"', '')
end
-- The last peer gone: no key stays behind, and rev may restart (PROTOCOL.md §3).
local function dropIfEmpty()
  if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
end
`

const clock = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

export const lua = {
  /** ARGV projectId, peerId, nodeId, peerJson, maxPeers → {1, rev, epoch, otherEntries} | {0, count} */
  join: project + `
local n = redis.call('HLEN', KEYS[1])
if n >= tonumber(ARGV[5]) then return {0, n} end
local others = redis.call('HVALS', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '|' .. ARGV[4])
local rev = announce('{"type":"peer-joined","peer":' .. ARGV[4], ARGV[3])
return {1, rev, epoch(), others}`,

  /** ARGV projectId, peerId, nodeId, peerJson → {1, rev} | {0} when the peer is not listed */
  update: project + `
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return {0} end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '|' .. ARGV[4])
return {1, announce('{"type":"peer-updated","peer":' .. ARGV[4], ARGV[3])}`,

  /** ARGV projectId, reason, peerId… → the removed entries (absent peers are skipped) */
  leave: project + `
local gone = {}
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    redis.call('HDEL', KEYS[1], ARGV[i])
    left(ARGV[i], ARGV[2])
    gone[#gone + 1] = v
  end
end
dropIfEmpty()
return gone`,

  /** ARGV projectId, deadNodeId → the removed entries: every peer of that node, as timeout */
  sweepProject: project + `
local all = redis.call('HGETALL', KEYS[1])
local prefix = ARGV[2] .. '|'
local gone = {}
for i = 1, #all, 2 do
  if string.sub(all[i + 1], 1, #prefix) == prefix then
    redis.call('HDEL', KEYS[1], all[i])
    left(all[i], 'timeout')
    gone[#gone + 1] = all[i + 1]
  end
end
dropIfEmpty()
return gone`,

  /** ARGV projectId, nodeId, (peerId, peerJson)… → how many were missing or stale and re-announced */
  reassert: project + `
local count = 0
for i = 3, #ARGV, 2 do
  local v = ARGV[2] .. '|' .. ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur ~= v then
    redis.call('HSET', KEYS[1], ARGV[i], v)
    announce('{"type":"' .. (cur and 'peer-updated' or 'peer-joined') .. '","peer":' .. ARGV[i + 1], ARGV[2])
    count = count + 1
  end
end
return count`,

  /** → {rev, epoch, entries}: one consistent snapshot for a replica */
  read: 'return {redis.call("GET", KEYS[2]) or "0", redis.call("GET", KEYS[3]) or "0", redis.call("HVALS", KEYS[1])}',

  /** KEYS user hash; ARGV peerId, nodeId, max → 1 admitted, 0 at the limit */
  reserveUser: `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`,

  /** KEYS user hash; ARGV nodeId → how many of that node's connections were released */
  sweepUser: `
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[1], all[i]); n = n + 1 end
end
return n`,

  /**
   * KEYS nodes; ARGV instance, ttlMs, register → 1 when the instance was missing (swept, or the
   * data lost). A refresh (register 0) never re-adds a missing instance: its node must come
   * back as a new instance, which no sweep of the old one can touch.
   */
  refresh: clock + `
local missing = redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
if missing and ARGV[3] ~= '1' then return 1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return missing and 1 or 0`,

  /**
   * KEYS nodes; ARGV member, ttlMs → 1 when this caller now owns the sweep of an expired
   * instance. The claim is a lease (~instance, expiring after one TTL), so a sweeper that
   * dies halfway is taken over by the next one; the sweep scripts are idempotent.
   */
  claim: clock + `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > now then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
local lease = string.sub(ARGV[1], 1, 1) == '~' and ARGV[1] or '~' .. ARGV[1]
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), lease)
return 1`,

  /** KEYS nodes → up to 16 nodes whose liveness expired, by the Redis clock */
  expired: clock + 'return redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, 16)'
}

export type ScriptName = keyof typeof lua

export const sha: Record<ScriptName, string> = Object.fromEntries(
  Object.entries(lua).map(([name, src]) => [name, createHash('sha1').update(src).digest('hex')])
) as Record<ScriptName, string>
