// How the generator speaks to each server under test: the same scenarios, each server's own
// framing. Every payload is the same JSON string, so all servers carry the same bytes of data.
import { createSigner } from 'fast-jwt'

export type TargetKind = 'ours' | 'raw' | 'socketio' | 'peerjs'

export interface PeerSpec {
  /** Unique across the run: user id, PeerJS id. */
  key: number
  project: string
  role: 'idle' | 'sender' | 'receiver' | 'bsender' | 'breceiver'
  /** Which server (node A or B) it connects to. */
  node: 'A' | 'B'
  /** For a sender: the key of its receiver. */
  to?: number
}

export type JoinStep = { id: string } | { reply: string } | { error: string } | undefined

export interface Protocol {
  path: (peer: PeerSpec) => string
  headers: (peer: PeerSpec) => Record<string, string>
  /** Reads one text (`buf[start, end)`) before the peer is ready: its id once known, a reply to send, or why it failed. */
  join: (buf: Buffer, start: number, end: number, peer: PeerSpec) => JoinStep
  /** A text that is the protocol's own heartbeat, with the answer to send. */
  live?: (len: number, first: number) => string | undefined
  signal: (to: string, payload: string) => string
  broadcast?: (payload: string) => string
  /** Something the client must send periodically to stay connected. */
  keepAlive?: { everyMs: number, text: string }
}

export const benchSecret = 'bench-secret-that-is-long-enough-for-hs256'

const welcomeHead = Buffer.from('{"type":"welcome","peerId":"')

/**
 * The peer id from a welcome's first bytes: both servers put it there, and ours lists the
 * project's peers after it (~1 KB in projects of 10), which the generator need not decode.
 */
function welcomeId (buf: Buffer, start: number, end: number): JoinStep {
  const from = start + welcomeHead.length
  if (end > from && buf.compare(welcomeHead, 0, welcomeHead.length, start, from) === 0) {
    const quote = buf.indexOf(0x22, from)
    if (quote > from && quote < end) return { id: buf.toString('latin1', from, quote) }
  }
  const frame = JSON.parse(buf.toString('utf8', start, end)) as { type?: string, peerId?: string, code?: string }
  if (frame.type === 'welcome' && typeof frame.peerId === 'string') return { id: frame.peerId }
  if (frame.type === 'error') return { error: `error ${String(frame.code)}` }
  return undefined
}

export function protocolFor (kind: TargetKind): Protocol {
  switch (kind) {
    case 'ours': {
      const sign = createSigner({ key: benchSecret, algorithm: 'HS256', expiresIn: 3600_000 })
      return {
        path: p => `/v1/ws?project=${p.project}`,
        headers: p => ({ authorization: `Bearer ${sign({ sub: `u${p.key}`, projects: [p.project] })}` }),
        join: welcomeId,
        signal: (to, payload) => `{"type":"signal","to":"${to}","data":"${payload}"}`,
        broadcast: payload => `{"type":"broadcast","data":"${payload}"}`
      }
    }
    case 'raw':
      return {
        path: p => `/?project=${p.project}`,
        headers: () => ({}),
        join: welcomeId,
        signal: (to, payload) => `{"type":"signal","to":"${to}","data":"${payload}"}`,
        broadcast: payload => `{"type":"broadcast","data":"${payload}"}`
      }
    case 'socketio':
      return {
        path: p => `/socket.io/?EIO=4&transport=websocket&project=${p.project}`,
        headers: () => ({}),
        // Engine.IO open ("0{…}"), then the namespace connect ("40" → "40{sid}").
        join: (buf, start, end) => {
          const text = buf.toString('utf8', start, end)
          if (text.startsWith('0{')) return { reply: '40' }
          if (text.startsWith('40{')) return { id: (JSON.parse(text.slice(2)) as { sid: string }).sid }
          if (text.startsWith('44')) return { error: text }
          return undefined
        },
        // Engine.IO ping "2" wants pong "3" within pingTimeout.
        live: (len, first) => len === 1 && first === 0x32 ? '3' : undefined,
        signal: (to, payload) => `42["signal",{"to":"${to}","data":"${payload}"}]`,
        broadcast: payload => `42["broadcast",{"data":"${payload}"}]`
      }
    case 'peerjs':
      return {
        path: p => `/peerjs?key=peerjs&id=p${p.key}&token=t${p.key}`,
        headers: () => ({}),
        join: (buf, start, end, p) => {
          const text = buf.toString('utf8', start, end)
          const m = JSON.parse(text) as { type?: string }
          if (m.type === 'OPEN') return { id: `p${p.key}` }
          if (m.type === 'ERROR' || m.type === 'ID-TAKEN') return { error: text }
          return undefined
        },
        signal: (to, payload) => `{"type":"OFFER","dst":"${to}","payload":"${payload}"}`,
        keepAlive: { everyMs: 20_000, text: '{"type":"HEARTBEAT"}' }
      }
  }
}

/** The data every relayed frame carries: the stamp slot, then padding to a typical ICE-candidate size. */
export function payload (bytes: number): string {
  const head = '~00:000000000000|'
  return head + 'x'.repeat(Math.max(0, bytes - head.length))
}
