// `npm run bench:fill [-- --peers 1000 --rounds 3]`: the server CPU it takes to fill one project
// of N peers, where every join is announced to everyone already in and every welcome lists
// them all, against the same N peers in projects of 10 (the capacity scenario's shape), in
// alternation. Our server only: the baselines have no presence to compare.
import WebSocket from 'ws'
import { createSigner } from 'fast-jwt'
import { cpuSeconds, killAll, startTarget, stopOnSignals } from './lib/procs.ts'
import { benchSecret } from './lib/protocols.ts'
import { oursEnv } from './scenarios.ts'

stopOnSignals()
const args = process.argv.slice(2)
function option (name: string, fallback: number): number {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : fallback
}
const peers = option('--peers', 1000)
const rounds = option('--rounds', 3)
const inFlight = 20
const sign = createSigner({ key: benchSecret, algorithm: 'HS256', expiresIn: 3600_000 })

/** Server CPU ms to connect `peers` peers into projects of `size`, every welcome received. */
async function fill (size: number): Promise<number> {
  // A server of its own each time: no garbage or heap growth left by the previous fill.
  const server = await startTarget('ours', { env: { ...oursEnv, MAX_PEERS_PER_PROJECT: String(Math.max(peers, 1000)) } })
  const tokens = Array.from({ length: peers }, (_, i) => sign({ sub: `u${i}`, projects: [`p${Math.floor(i / size)}`], name: `User ${i}` }))
  const sockets: WebSocket[] = []
  try {
    const before = cpuSeconds(server.pid)
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < peers) {
        const i = next++
        await new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/ws?project=p${Math.floor(i / size)}`, { headers: { authorization: `Bearer ${tokens[i]}` } })
          sockets.push(ws)
          ws.once('message', (data: Buffer) => {
            if ((JSON.parse(data.toString()) as { type?: string }).type === 'welcome') resolve()
            else reject(new Error(`peer ${i}: ${data.toString()}`))
          })
          ws.once('error', reject)
        })
      }
    }
    await Promise.all(Array.from({ length: inFlight }, lane))
    // The presence events still held for their batch (10 ms) go out too.
    await new Promise(resolve => setTimeout(resolve, 200))
    return (cpuSeconds(server.pid) - before) * 1000
  } finally {
    for (const ws of sockets) ws.terminate()
    await server.stop()
  }
}

try {
  const one: number[] = []
  const tens: number[] = []
  for (let r = 1; r <= rounds; r++) {
    one.push(await fill(peers))
    tens.push(await fill(10))
    process.stderr.write(`round ${r}: one project of ${peers}: ${one[r - 1].toFixed(0)} ms; projects of 10: ${tens[r - 1].toFixed(0)} ms\n`)
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const a = median(one)
  const b = median(tens)
  console.log(`${peers} peers, server CPU (median of ${rounds}): one project ${a.toFixed(0)} ms, projects of 10 ${b.toFixed(0)} ms, ratio ${(a / b).toFixed(2)}×`)
} finally {
  killAll()
}
