// Loaded into every server under test (`--import`): answers the bench's memory question over
// the IPC channel, after a full GC (`--expose-gc`), so memory per peer counts live objects only.
interface Gc { gc?: () => void }

if (process.send !== undefined) {
  process.on('message', (m) => {
    if (m !== 'mem') return
    ;(globalThis as Gc).gc?.()
    process.send?.({ mem: process.memoryUsage() })
  })
  // The channel must not keep a server alive once it has closed everything else.
  process.channel?.unref()
  // The bench that started this server is gone (killed, crashed): a server under test must
  // not outlive it. A signal to itself, so it shuts down as it would when told to.
  process.on('disconnect', () => { process.kill(process.pid, 'SIGTERM') })
}
