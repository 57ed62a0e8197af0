import t from 'tap'
import { multiNodeSuite } from './presence-contract-cluster.ts'
import { startCluster } from './helpers/redis.ts'

// One 3-master Redis Cluster for the file: creating one takes seconds, and each test uses
// its own projects and node ids.
let cluster: Promise<string> | undefined
multiNodeSuite(t, 'redis cluster', async () => await (cluster ??= startCluster(t).then(c => c.url)))
