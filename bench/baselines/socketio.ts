// Socket.IO 4.8 doing the same job: rooms per project, a signal to a socket's own room.
import { createServer } from 'node:http'
import { Server } from 'socket.io'

const port = Number(process.env.PORT)
const http = createServer()
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false, maxHttpBufferSize: 65536 })

interface Msg { to?: string, data?: unknown }

io.on('connection', (socket) => {
  const project = String(socket.handshake.query.project ?? '')
  Promise.resolve(socket.join(project)).catch(() => {})
  socket.on('signal', (m: Msg) => { if (typeof m.to === 'string') socket.to(m.to).emit('signal', { from: socket.id, data: m.data }) })
  socket.on('broadcast', (m: Msg) => { socket.to(project).emit('broadcast', { from: socket.id, data: m.data }) })
})
http.listen(port, '127.0.0.1')
process.on('SIGTERM', () => { io.close().finally(() => process.exit(0)) })
