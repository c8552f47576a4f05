/**
 * Builds the order service's fastify app from injected dependencies (the
 * store, the stage source, the id source, a logger), so tests and the demo
 * start it on any fleet and `main.ts` is only the composition root.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from '../../src/index.js'
import { answerFor, DEFAULT_RETRY, validationBody, type RetryPolicy } from './errors.js'
import { orderRoutes, type IdSource, type OrderStore } from './routes/orders.js'
import { DEFAULT_BODY_LIMIT, FORMATS } from './schemas.js'

export type { IdSource, OrderStore } from './routes/orders.js'

/** What `/readyz` asks (a `StageWatcher` satisfies it). */
export interface ReadinessSource {
  /** False while the stage is unknown or Redis is lost. */
  readonly ready: boolean
}

export interface OrderServiceDeps {
  readonly store: OrderStore
  readonly stage: ReadinessSource
  readonly ids: IdSource
  /** pino logger for request logs (default: none). */
  readonly logger?: Logger
  /** Largest request body in bytes (default 64 KiB). */
  readonly bodyLimit?: number
  readonly retry?: RetryPolicy
  readonly now?: () => number
  /** Extra readiness checks (e.g. the id lease); all must be true. */
  readonly readyChecks?: ReadonlyArray<() => boolean>
  /** A prom-client registry served on `GET /metrics` (the store's and watcher's ShardkitMetrics, and the service's own). */
  readonly metrics?: { contentType: string; metrics(): Promise<string> }
}

/**
 * The service as a fastify instance, not listening yet.
 * @example
 * const app = await buildApp({ store, stage: watcher, ids: generator, logger })
 * await app.listen({ port: 8080 })
 */
export async function buildApp(d: OrderServiceDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(d.logger ? { loggerInstance: d.logger } : { logger: false }),
    bodyLimit: d.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Answer 503 to new requests while closing; in-flight ones finish.
    return503OnClosing: true,
    ajv: {
      // No coercion: an id sent as a JSON number must be refused, not turned into a string.
      // No silent removal: an unknown field is an error naming it.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, formats: FORMATS },
    },
  })

  // While closing, answers in flight carry `Connection: close` so keep-alive
  // clients let go and close() can finish (idle sockets are closed by fastify).
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) void reply.header('connection', 'close')
    return payload
  })

  app.setErrorHandler((err, req, reply) => {
    const v = (err as { validation?: unknown[]; validationContext?: string }).validation
    if (Array.isArray(v)) return reply.code(400).send(validationBody(v as never, (err as { validationContext?: string }).validationContext))
    const { status, body } = answerFor(err)
    if (status >= 500) req.log.error({ err, code: body.error }, 'request failed')
    if (status === 503) void reply.header('retry-after', '1')
    return reply.code(status).send(body)
  })
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` }))

  app.get('/healthz', async () => ({ ok: true }))
  app.get('/readyz', async (_req, reply) => {
    const ready = d.stage.ready && (d.readyChecks ?? []).every((c) => c())
    return reply.code(ready ? 200 : 503).send({ ready })
  })

  if (d.metrics) {
    const registry = d.metrics
    app.get('/metrics', async (_req, reply) => reply.header('content-type', registry.contentType).send(await registry.metrics()))
  }

  await app.register(async (scope) => orderRoutes(scope, { store: d.store, ids: d.ids, retry: d.retry ?? DEFAULT_RETRY, now: d.now ?? Date.now }))
  return app as unknown as FastifyInstance
}
