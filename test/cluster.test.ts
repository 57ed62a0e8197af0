import t from 'tap'
import { multiNodeSuite } from './presence-contract-cluster.ts'
import { startRedis } from './helpers/redis.ts'

multiNodeSuite(t, 'one redis', async (t) => (await startRedis(t)).url)
