/**
 * Shared AMQP helpers of the events tests: the broker URL, a config whose
 * events exchange is unique to the test, and a collector queue that records
 * every event the relay publishes, in arrival order. Everything a helper
 * declares is deleted by `cleanup()`.
 */
import { Connection, type Consumer } from 'rabbitmq-client'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { decodeEvent, type OrderEvent } from '../../src/events/message.js'

/** The test broker (env SHARDKIT_TEST_AMQP_URL, else the local RabbitMQ). */
export function testAmqpUrl(): string {
  return process.env.SHARDKIT_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
}

/** The config with its events pointed at `url` and an exchange of the test's own. */
export function withEvents(config: ShardkitConfig, exchange: string, url = testAmqpUrl()): ShardkitConfig {
  return { ...config, events: { ...config.events, url, exchange } }
}

/** Events as received, plus the per-order view tests assert on. */
export interface Collector {
  readonly queue: string
  readonly events: OrderEvent[]
  /** Resolves once `n` events arrived; rejects after `timeoutMs` naming how many did. */
  waitFor(n: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

/**
 * A classic queue bound to `exchange` with `order.#` (or `bindings`) and one
 * consumer recording every delivery. One queue keeps the broker's order, so
 * it is the strictest observer of the relay's order.
 */
export async function collect(conn: Connection, exchange: string, queue: string, opts: { bindings?: string[]; declareExchange?: boolean } = {}): Promise<Collector> {
  const events: OrderEvent[] = []
  let waiters: { n: number; resolve: () => void }[] = []
  if (opts.declareExchange !== false) await conn.exchangeDeclare({ exchange, type: 'topic', durable: true })
  await conn.queueDeclare({ queue, durable: false, autoDelete: false })
  for (const routingKey of opts.bindings ?? ['order.#']) await conn.queueBind({ exchange, queue, routingKey })
  const sub: Consumer = conn.createConsumer({ queue, qos: { prefetchCount: 200 } }, (msg) => {
    events.push(decodeEvent(Buffer.isBuffer(msg.body) ? msg.body : JSON.stringify(msg.body)))
    waiters = waiters.filter((w) => {
      if (events.length >= w.n) w.resolve()
      return events.length < w.n
    })
  })
  // Without a listener a consumer error (e.g. a redeclare mismatch) would crash the test process.
  sub.on('error', () => undefined)
  return {
    queue,
    events,
    waitFor(n, timeoutMs = 20_000) {
      if (events.length >= n) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`expected ${n} events on ${queue}, got ${events.length}`)), timeoutMs)
        waiters.push({ n, resolve: () => { clearTimeout(t); resolve() } })
      })
    },
    async close() {
      await sub.close()
    },
  }
}

/** Versions per order in first-arrival order (duplicates dropped), and how many arrivals were duplicates. */
export function firstArrivals(events: readonly OrderEvent[]): { byOrder: Map<string, number[]>; duplicates: number } {
  const seen = new Set<string>()
  const byOrder = new Map<string, number[]>()
  let duplicates = 0
  for (const e of events) {
    if (seen.has(e.eventId)) {
      duplicates++
      continue
    }
    seen.add(e.eventId)
    const list = byOrder.get(e.orderId) ?? []
    list.push(e.version)
    byOrder.set(e.orderId, list)
  }
  return { byOrder, duplicates }
}

/** Orders whose first arrivals are not exactly 1, 2, ..., n (with n = expected[order] when given). */
export function misordered(byOrder: Map<string, number[]>, expected?: Map<string, number>): string[] {
  const bad: string[] = []
  for (const [order, versions] of byOrder) {
    const n = expected?.get(order) ?? versions.length
    if (versions.length !== n || versions.some((v, i) => v !== i + 1)) bad.push(`${order}: ${versions.join(',')}`)
  }
  if (expected) for (const order of expected.keys()) if (!byOrder.has(order)) bad.push(`${order}: none`)
  return bad
}

/** Deletes queues and exchanges a test declared (ignores ones already gone). */
export async function deleteTopology(conn: Connection, t: { queues?: string[]; exchanges?: string[] }): Promise<void> {
  for (const queue of t.queues ?? []) await conn.queueDelete({ queue }).catch(() => undefined)
  for (const exchange of t.exchanges ?? []) await conn.exchangeDelete({ exchange }).catch(() => undefined)
}
