import type { Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

/**
 * @fastify/websocket runs every upgrade request through Fastify with a ServerResponse bound
 * to the raw socket. Node no longer reads or times out that socket, and outside our route
 * (a 404, a host's route) nothing destroys it once the reply is written: it would stay open
 * for ever and hold `app.close()` with it. End it once its reply is out.
 * Returns the listener's remover.
 */
export function endUnupgradedSockets (server: Server): () => void {
  server.on('upgrade', endOnceAnswered)
  return () => { server.removeListener('upgrade', endOnceAnswered) }
}

// Shared listeners, no closure per upgrade: every WebSocket connection passes through here.
function endOnceAnswered (_request: unknown, socket: Duplex): void {
  // Set by ServerResponse#assignSocket, synchronously in @fastify/websocket's listener.
  const response = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
  if (response === undefined || response === null) return
  if (response.writableFinished) endSocket(socket)
  else response.on('finish', onAnswered)
}

function onAnswered (this: ServerResponse): void {
  // Upgraded sockets were detached from their response (routes/ws.ts) and never finish it.
  if (this.socket !== null) endSocket(this.socket)
}

function endSocket (socket: Duplex): void {
  if (!socket.destroyed) socket.end(() => socket.destroy())
}
