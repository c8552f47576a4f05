/**
 * What the order-event consumer tests share: per-test names (exchange,
 * queue, Redis key prefix) removed after the test, synthetic events, a raw
 * publisher, polling without fixed sleeps, and starting a consumer bound to
 * every partition. The connection, publisher and Redis client are read
 * through getters because each test file opens them in its beforeAll (and
 * may replace the Redis client when it restarts its server).
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Connection, Publisher } from 'rabbitmq-client'
import { createOrderEventConsumer, type HandleContext, type OrderEventConsumer, type OrderEventConsumerOptions } from '../../src/events/consumer.js'
import { EVENT_PARTITIONS, bindingKey, encodeEvent, routingKeyOf, type OrderEvent, type OrderEventType } from '../../src/events/message.js'

export const ALL_PARTITIONS = Array.from({ length: EVENT_PARTITIONS }, (_, p) => bindingKey(p))
const TYPES: OrderEventType[] = ['created', 'paid', 'accepted', 'delivering', 'completed', 'cancelled']

export interface ConsumerHarnessDeps {
  readonly prefix: string
  readonly amqpUrl: string
  readonly conn: () => Connection
  readonly pub: () => Publisher
  readonly redis: () => Redis
  /** Default for `until` (ms). */
  readonly untilMs?: number
}

export type TestNames = { exchange: string; queue: string; keyPrefix: string }

export function consumerHarness(d: ConsumerHarnessDeps) {
  let n = 0
  let seq = 0
  /** Run (and emptied) by `cleanup()`, in order: consumers first (they are unshifted), then queues and exchanges. */
  const cleanups: (() => Promise<unknown>)[] = []

  /** One test's names: its own exchange, queue and Redis key prefix. */
  function names(): TestNames {
    const id = ++n
    const exchange = `${d.prefix}ex${id}`
    const queue = `${d.prefix}q${id}`
    cleanups.push(
      () => d.conn().queueDelete({ queue }),
      () => d.conn().exchangeDelete({ exchange }),
    )
    return { exchange, queue, keyPrefix: `${d.prefix}t${id}:` }
  }

  function ev(orderId: string, version: number, eventId = `e${++seq}-${randomUUID().slice(0, 8)}`): OrderEvent {
    return {
      eventId,
      orderId,
      userId: String(1000 + (Number(orderId) % 97)),
      merchantId: '77',
      type: TYPES[Math.min(version - 1, TYPES.length - 1)]!,
      version,
      occurredAt: new Date().toISOString(),
    }
  }

  async function publish(exchange: string, events: readonly OrderEvent[]): Promise<void> {
    for (const e of events) await d.pub().send({ exchange, routingKey: routingKeyOf(e), durable: true }, encodeEvent(e))
  }

  /** Polls `cond` (no fixed sleeps): resolves once it holds, fails naming `what` after `ms`. */
  async function until(cond: () => boolean | Promise<boolean>, what: string, ms = d.untilMs ?? 15_000): Promise<void> {
    const end = Date.now() + ms
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** A consumer on the test's queue, bound to every partition, fast retries; closed by `cleanup()`. */
  async function start(nm: TestNames, handle: (e: OrderEvent, ctx: HandleContext) => void | Promise<void>, extra: Partial<OrderEventConsumerOptions> = {}): Promise<OrderEventConsumer> {
    const c = await createOrderEventConsumer({
      amqpUrl: d.amqpUrl,
      exchange: nm.exchange,
      redis: d.redis(),
      keyPrefix: nm.keyPrefix,
      queue: nm.queue,
      bindings: ALL_PARTITIONS,
      handle,
      retryDelayMs: { initial: 20, max: 200 },
      ...extra,
    })
    cleanups.unshift(() => c.close())
    return c
  }

  async function cleanup(): Promise<void> {
    for (const c of cleanups.splice(0)) await c().catch(() => undefined)
  }

  return { cleanups, names, ev, publish, until, start, cleanup }
}
