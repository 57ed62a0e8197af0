// The SDK's wire types are written apart from services/frames.ts so the browser build holds no
// server code. This file fails `tsc` (npm run typecheck) the day the two drift apart.
import t from 'tap'
import type * as Server from '../services/frames.ts'
import type { FrameErrorCode, RefusalCode } from '../services/codes.ts'
import type * as Client from '../client/protocol.ts'

/** Identity, not mere assignability: an extra optional field on either side breaks it. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
type Assignable<A, B> = [A] extends [B] ? true : false

// Each line is `true` only while both sides agree.
const agreements: Array<true> = [
  true satisfies Same<Server.Peer, Client.Peer>,
  true satisfies Same<Server.WireLimits, Client.WireLimits>,
  true satisfies Same<Server.ClientFrame, Client.ClientFrame>,
  true satisfies Same<FrameErrorCode, Client.FrameErrorCode>,
  true satisfies Same<RefusalCode, Client.RefusalCode>,
  // The server's schema types an error's `code` as any string; the SDK narrows it to the contract's.
  true satisfies Assignable<Client.ServerFrame, Server.ServerFrame>,
  true satisfies Same<Exclude<Server.ServerFrame, { type: 'error' }>, Exclude<Client.ServerFrame, { type: 'error' }>>
]

t.equal(agreements.length, 7, 'the SDK and the server describe the same frames')
