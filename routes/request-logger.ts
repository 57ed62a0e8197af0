import type { FastifyBaseLogger, RouteOptions } from 'fastify'

type ChildLoggerFactory = NonNullable<RouteOptions['childLoggerFactory']>

/** Per route (its merged serializers object): the logger they are bound to, once. */
const bases = new WeakMap<object, { parent: FastifyBaseLogger, base: FastifyBaseLogger }>()

/**
 * Fastify makes each request's logger with `child(bindings, { serializers })`, and pino then
 * copies every serializer along the prototype chain and rebuilds its formatters: ~1 µs per
 * request in a loop (0.2–0.4 µs without), 2 % of a connection's CPU on the upgrade path. A route's
 * serializers never change, so they are bound once to a base logger, and the context's own
 * factory (a host's, or Fastify's) gets that base and the request's bindings only.
 */
export const childLoggerWithBoundSerializers: ChildLoggerFactory = function (logger, bindings, opts, rawReq) {
  const factory = this.childLoggerFactory
  const { serializers, ...rest } = opts
  if (serializers === undefined) return factory.call(this, logger, bindings, opts, rawReq)
  let entry = bases.get(serializers)
  if (entry === undefined || entry.parent !== logger) {
    entry = { parent: logger, base: logger.child({}, { serializers }) }
    bases.set(serializers, entry)
  }
  return factory.call(this, entry.base, bindings, rest, rawReq)
}
