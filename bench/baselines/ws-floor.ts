// The floor of the connect target's named work (`npm run bench:ab -- --floor`): bare `ws` plus
// only what the target names, each done the cheap way. A token checked per upgrade (fast-jwt's
// verifier, our options), a presence list per project, `peer-joined` to everyone already in,
// held per recipient for 10 ms and written together as ours does, and a welcome listing the
// project. No validation of frames, limits, heartbeat, metrics or logging, and no relay: a
// yardstick for the connection path only.
import '../../services/gc-tuning.ts'
import { createVerifier } from 'fast-jwt'
import { WebSocketServer, type WebSocket } from 'ws'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { benchSecret } from '../lib/protocols.ts'

interface Member { ws: WebSocket, json: string }
type Authed = IncomingMessage & { sub?: string }

const verify = createVerifier({ key: benchSecret, algorithms: ['HS256'], clockTolerance: 5000, requiredClaims: ['sub', 'exp', 'projects'] })
const projects = new Map<string, Map<string, Member>>()
const held = new Map<WebSocket, string[]>()
let flushTimer: NodeJS.Timeout | undefined
let seq = 0

function flush (): void {
  flushTimer = undefined
  for (const [ws, frames] of held) {
    const socket = (ws as WebSocket & { _socket: Socket })._socket
    socket.cork()
    for (const f of frames) ws.send(f)
    socket.uncork()
  }
  held.clear()
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.env.PORT),
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 65536,
  verifyClient: (info: { req: Authed }, done: (ok: boolean, code?: number) => void) => {
    try {
      const claims = verify((info.req.headers.authorization ?? '').slice(7)) as { sub: string }
      info.req.sub = claims.sub
      done(true)
    } catch {
      done(false, 401)
    }
  }
})

wss.on('connection', (ws, req: Authed) => {
  const peerId = `f${(++seq).toString(36)}`
  const project = new URL(req.url ?? '/', 'http://x').searchParams.get('project') ?? ''
  let members = projects.get(project)
  if (members === undefined) projects.set(project, members = new Map())
  const json = JSON.stringify({ peerId, userId: req.sub, meta: {}, connectedAt: new Date().toISOString() })
  const joined = `{"type":"peer-joined","peer":${json},"rev":${members.size + 1}}`
  const list: string[] = []
  for (const m of members.values()) {
    list.push(m.json)
    const frames = held.get(m.ws)
    if (frames === undefined) held.set(m.ws, [joined])
    else frames.push(joined)
  }
  if (held.size > 0) flushTimer ??= setTimeout(flush, 10)
  members.set(peerId, { ws, json })
  ws.send(`{"type":"welcome","peerId":"${peerId}","projectId":"${project}","peers":[${list.join(',')}],"rev":${members.size}}`)
  ws.on('close', () => {
    members.delete(peerId)
    held.delete(ws)
    if (members.size === 0) projects.delete(project)
  })
})
process.on('SIGTERM', () => { wss.close(); process.exit(0) })
