// WorkStream Registry client: browsers (native WebSocket) and Node (`ws`), no other dependency.
import { RegistryClient } from './client.ts'
import type { ConnectOptions } from './options.ts'

export { RegistryClient, backoff } from './client.ts'
export type { ClientEvents, ClientState, ConnectOptions, ReconnectOptions } from './options.ts'
export { RegistryError } from './errors.ts'
export type { ClientErrorCode, LocalErrorCode, Retry } from './errors.ts'
export type { SocketConstructor, SocketLike } from './socket.ts'
export * from './protocol.ts'

/** Connects and resolves after `welcome`; rejects with a RegistryError when that fails. */
export function connect (opts: ConnectOptions): Promise<RegistryClient> {
  return RegistryClient.connect(opts)
}
