// The SDK under test, opened with teardown registered where it is created (STYLE.md §9).
import { connect, type ClientEvents, type ConnectOptions, type RegistryClient } from '../../client/index.ts'
import { token } from './app.ts'

interface Teardown { teardown: (fn: () => unknown) => void }

export async function open (t: Teardown, url: string, project: string, opts: Partial<ConnectOptions> & { sub?: string } = {}): Promise<RegistryClient> {
  const { sub = 'alice', ...rest } = opts
  const client = await connect({ url, project, ...(rest.getToken === undefined ? { token: token({ sub }) } : {}), ...rest })
  t.teardown(() => client.close())
  return client
}

/** The next `event` of `client`; arm it before acting, await it after. */
export function next<E extends keyof ClientEvents> (client: RegistryClient, event: E, timeoutMs = 5000): Promise<ClientEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${String(event)} event within ${timeoutMs} ms`)) }, timeoutMs)
    const off = client.on(event, payload => {
      clearTimeout(timer)
      off()
      resolve(payload)
    })
  })
}
