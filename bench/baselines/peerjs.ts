// PeerJS's signalling server (`peer`): directed OFFER/ANSWER/CANDIDATE relay, no broadcast.
import { PeerServer } from 'peer'

const port = Number(process.env.PORT)
// Its defaults cap a server at 5,000 clients and drop a client silent for 60–90 s.
PeerServer({ port, host: '127.0.0.1', path: '/', concurrent_limit: 1_000_000, alive_timeout: 600_000 })
process.on('SIGTERM', () => process.exit(0))
