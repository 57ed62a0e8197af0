// Imported first by server.ts: our own process only; a host embedding app.ts sets its own V8
// flags (README "Embedding").
import { setFlagsFromString } from 'node:v8'

/**
 * V8's allocation-site pretenuring, once it sees short-lived per-message objects survive a
 * few scavenges, allocates them straight into the old generation, where each keeps what is
 * later stored in it alive through every scavenge until a full GC. In relay runs at
 * 5,000-10,000 msg/s our server and the raw ws relay alike (raw: 5 runs of 13) settled into
 * copying and promoting ~1 MB (mostly ws's receive buffers) at every scavenge, with pauses
 * twice as long (`--trace-gc-nvp`); with pretenuring off, neither did in seven runs.
 */
setFlagsFromString('--no-allocation-site-pretenuring')
