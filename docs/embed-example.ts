// The README's "Embedding" example, kept here so `npm run typecheck` proves it compiles
// (tsconfig.json includes docs/). It is not run by the tests; test/embed.test.ts covers the same.
import Fastify from 'fastify'
import registry from 'workstream-registry'

const app = Fastify({
  logger: true,
  // Project ids reach 128 characters; Fastify refuses path parameters over 100 by default.
  routerOptions: { maxParamLength: 1024 }
})

// The host's own routes, JWT setup and error handler stay the host's.
app.get('/', async () => ({ hello: 'host' }))

await app.register(registry, {
  prefix: '/registry',
  jwt: { publicKey: process.env.JWT_PUBLIC_KEY ?? '', issuer: 'https://auth.example.com' },
  limits: { maxPeersPerProject: 50, heartbeatMs: 15000 },
  allowedOrigins: ['https://app.example.com'],
  // Replaces the `projects` claim check: here a project `team-<id>` belongs to the token's team.
  authorize: async (user, projectId) => projectId === `team-${String(user.claims.team)}`
})

await app.listen({ host: '127.0.0.1', port: 3000 })
// Peers: ws://127.0.0.1:3000/registry/v1/ws?project=team-42
// REST:  GET http://127.0.0.1:3000/registry/v1/projects/team-42/peers
