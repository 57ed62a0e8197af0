import t from 'tap'
import { LocalBus } from '../services/bus/local.ts'
import { MemoryPresence } from '../services/presence/memory.ts'
import { RedisBus } from '../services/bus/redis.ts'
import { RedisPresence } from '../services/presence/redis.ts'
import { createClient } from '../services/redis/connect.ts'
import { RedisLink, type RedisClient } from '../services/redis/link.ts'
import { presenceContract } from './presence-contract.ts'
import { startRedis } from './helpers/redis.ts'

presenceContract(t, 'memory', async () => {
  const bus = new LocalBus()
  const presence = new MemoryPresence(bus)
  return async () => ({ presence, bus })
})

presenceContract(t, 'redis', async (t) => {
  const redis = await startRedis(t)
  return async (nodeId) => {
    const cmd = createClient(redis.url, 'commands')
    const sub = createClient(redis.url, 'subscriber')
    const link = new RedisLink(cmd as unknown as RedisClient, sub as unknown as RedisClient)
    const bus = new RedisBus(link, { resubscribe: true })
    const presence = new RedisPresence(link, { nodeId, presenceTtlMs: 5000 })
    await Promise.all([cmd, sub].map(c => new Promise(resolve => c.once('ready', resolve))))
    await link.start()
    presence.start()
    t.teardown(async () => {
      await presence.close()
      await bus.close()
      cmd.disconnect()
      sub.disconnect()
    })
    return { presence, bus }
  }
})
