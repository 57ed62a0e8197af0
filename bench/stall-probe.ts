// A process that never yields, pinned to one core by bench/lib/procs.ts: any gap between two
// of its clock readings is time the kernel or the hypervisor took the core away. On a shared
// VM those gaps put a floor under every server's tail latency, whatever the server does.
const ms = Number(process.argv[2] ?? '5000')
const gaps: number[] = []
const start = performance.now()
let last = start
for (;;) {
  const now = performance.now()
  if (now - last >= 1) gaps.push(now - last)
  last = now
  if (now - start >= ms) break
}
process.stdout.write(JSON.stringify({ ms: last - start, gaps }) + '\n')
