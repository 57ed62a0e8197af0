// The floor to compare against: a relay on bare `ws` with no auth, no validation, no presence,
// no limits. Map id → socket for signals, project → sockets for broadcasts, JSON in and out.
// The V8 setting our server makes for itself (services/gc-tuning.ts), so the floor stays the floor.
import '../../services/gc-tuning.ts'
import { WebSocketServer, type WebSocket } from 'ws'

const port = Number(process.env.PORT)
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false, maxPayload: 65536 })
const sockets = new Map<string, WebSocket>()
const projects = new Map<string, Set<WebSocket>>()
let seq = 0

interface Msg { type?: string, to?: string, data?: unknown }

wss.on('connection', (ws, req) => {
  const id = `r${(++seq).toString(36)}`
  const project = new URL(req.url ?? '/', 'http://x').searchParams.get('project') ?? ''
  let members = projects.get(project)
  if (members === undefined) projects.set(project, members = new Set())
  members.add(ws)
  sockets.set(id, ws)
  ws.send(JSON.stringify({ type: 'welcome', peerId: id }))
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as Msg
    if (m.type === 'signal' && m.to !== undefined) {
      sockets.get(m.to)?.send(JSON.stringify({ type: 'signal', from: id, data: m.data }))
    } else if (m.type === 'broadcast') {
      const text = JSON.stringify({ type: 'broadcast', from: id, data: m.data })
      for (const s of members) if (s !== ws) s.send(text)
    }
  })
  ws.on('close', () => {
    sockets.delete(id)
    members.delete(ws)
    if (members.size === 0) projects.delete(project)
  })
})
process.on('SIGTERM', () => { wss.close(); process.exit(0) })
