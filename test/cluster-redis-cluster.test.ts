import t from 'tap'
import { token } from './helpers/app.ts'
import { join, multiNodeSuite, threeNodes } from './presence-contract-cluster.ts'
import { startCluster, until, type RedisCluster } from './helpers/redis.ts'

// One 3-master Redis Cluster for the file: creating one takes seconds, and each test uses
// its own projects and node ids.
let cluster: Promise<RedisCluster> | undefined
const once = async (): Promise<RedisCluster> => await (cluster ??= startCluster(t))
multiNodeSuite(t, 'redis cluster', async () => (await once()).url)

t.test('redis cluster: data flushed on every master, subscriptions killed on every master', async t => {
  const { url, servers } = await once()
  const [n1, n2] = await threeNodes(t, url, { presenceTtlMs: 1000 })
  const a = await join(t, n1, 'z')
  const b = await join(t, n2, 'z')
  await a.nextOf('peer-joined')
  const flushedAt = Date.now()
  for (const s of servers) await s.cli('flushall')
  const inRedis = async (): Promise<string> => (await servers[0].cli('-c', 'hkeys', 'wsp:{z}:peers')).split('\n').filter(x => x !== '').sort().join()
  await until(async () => await inRedis() === [a.peerId, b.peerId].sort().join(), 1000, 'presence rebuilt')
  t.comment(`cluster flushall: presence rebuilt after ${Date.now() - flushedAt} ms`)

  const killedAt = Date.now()
  for (const s of servers) await s.cli('client', 'kill', 'type', 'pubsub')
  let delivered = false
  b.ws.on('message', (raw) => { if (raw.toString().includes('"data":"after-kill"')) delivered = true })
  await until(() => {
    a.send({ type: 'signal', to: b.peerId, data: 'after-kill' })
    return delivered
  }, 5000, 'relay after the subscriber kill')
  t.comment(`cluster pubsub killed: relay back after ${Date.now() - killedAt} ms`)
  const res = await fetch(`${n1.url}/v1/projects/z/peers`, { headers: { authorization: `Bearer ${token({ sub: 'rest' })}` } })
  t.equal(((await res.json()) as { peers: unknown[] }).peers.length, 2)
})
