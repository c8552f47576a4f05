/**
 * `createOrderEventConsumer`: the consumer side of order events. It declares
 * its queue from configuration (quorum, `x-max-length` 10,000 with
 * `reject-publish`, no dead-letter exchange, single active consumer so one
 * process at a time reads a queue in order), binds it to the topic exchange,
 * and calls `handle` once per event and in version order per order, using
 * Redis (dedupe.ts) to drop duplicates and stale versions.
 *
 * Delivery rules, in the order they matter:
 * - A message is acked only after `handle` resolved and Redis recorded it.
 *   If `handle` throws, the message stays unacked and `handle` is retried in
 *   place with backoff (later versions of that order wait; other orders go
 *   on); on `close()` or a lost connection the broker redelivers it. Retrying
 *   in place rather than nack-requeue keeps the order and does not count
 *   against a quorum queue's delivery limit (RabbitMQ 4 drops a message after
 *   20 returns when there is no dead-letter exchange).
 * - The window for a second call is a crash between `handle` resolving and
 *   Redis recording it (one round trip): `handle` must be idempotent anyway.
 * - A version ahead of the next one waits up to `gapWaitMs` (holding its
 *   prefetch slot) for the missing ones, then is handled with `gap` reported;
 *   a missing version arriving later is `stale` and skipped.
 * - A body that is not an order event is dropped (counted `malformed`, logged):
 *   requeueing it would loop forever.
 * - Redis loses its data (a flush or a restart; Redis keeps nothing on disk
 *   here): every Redis answer carries the queue's epoch marker (dedupe.ts), so
 *   the consumer notices (`redisLosses`). What still holds then depends on
 *   `durableState`:
 *   - with it (a MySQL table in the consuming service's database,
 *     consumer-state.ts), written before Redis on every handled event and read
 *     whenever Redis knows nothing of an order: `handle` still sees each event
 *     once and in version order (a resend of an event handled before the loss
 *     is `stale`), with the same one-round-trip crash window as above;
 *   - without it: an event of an order Redis no longer remembers that occurred
 *     before the loss (`clockSkewMs` of slack) may have been handled already.
 *     It is unvouched: counted, kept in `unvouched`, passed to `onUnvouched`,
 *     and by `unvouchedPolicy` skipped (`'skip'`, the default: `handle` never
 *     sees a possible duplicate) or handed to `handle` with `ctx.unvouched` set
 *     (`'handle'`: the service decides). Events that occurred after the loss
 *     are handled as usual; an order's first one waits `gapWaitMs` for the
 *     versions Redis forgot, then comes with `gap` set.
 *   A loss while no consumer of the queue runs looks like a first start
 *   unless `durableState` is configured.
 * This file validates options and declares the queue; the message loop is
 * consumer-engine.ts.
 */
import type { Connection } from 'rabbitmq-client'
import type { Redis } from 'ioredis'
import { ShardkitError } from '../errors.js'
import { silentLogger, type Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { bindingKey, type OrderEvent } from './message.js'
import { openEventConnection } from './amqp.js'
import { createEventDedupe } from './dedupe.js'
import { EventConsumer } from './consumer-engine.js'
import type { VersionGap } from './ordering.js'
import type { ConsumerStateStore } from './consumer-state.js'

/** What the consumer does with an event it cannot vouch for after a Redis loss (see the module comment). */
export type UnvouchedPolicy = 'skip' | 'handle'

/** An event the consumer can no longer vouch for, and why. */
export interface UnvouchedEvent {
  readonly orderId: string
  readonly version: number
  readonly eventId: string
  readonly queue: string
  /** Stable: `redis-data-lost` (Redis lost the queue's memory and no durable store is configured). */
  readonly reason: 'redis-data-lost'
  /** The same in a sentence, with the times. */
  readonly detail: string
  /** When the loss was noticed (ISO 8601). */
  readonly lostAt: string
  /** What was done with it: skipped, or handed to `handle` with `ctx.unvouched`. */
  readonly action: UnvouchedPolicy
}

/** What `handle` learns besides the event. */
export interface HandleContext {
  /** Set when versions `expected`..`got - 1` never arrived within `gapWaitMs`. */
  readonly gap?: VersionGap
  /** The broker delivered this message before (to this or another consumer). */
  readonly redelivered: boolean
  readonly routingKey: string
  /** The queue it came from. */
  readonly queue: string
  /** 1 on the first call for this delivery, 2+ when retried after a throw. */
  readonly attempt: number
  /** Set (only with `unvouchedPolicy: 'handle'`) when this event may have been handled before a Redis loss. */
  readonly unvouched?: UnvouchedEvent
}

/** Called once per event, in version order per order. Must be idempotent (see the module comment). */
export type OrderEventHandler = (event: OrderEvent, ctx: HandleContext) => Promise<void> | void

export interface OrderEventConsumerOptions {
  /** Supplies the broker url, exchange, Redis and key prefix; or give them one by one below. */
  readonly runtime?: Runtime
  readonly amqpUrl?: string
  /** A broker connection the caller owns and closes (e.g. one shared by a service's consumers); else one is opened from `amqpUrl` and closed by `close()`. */
  readonly connection?: Connection
  readonly exchange?: string
  /** Not closed by the consumer. */
  readonly redis?: Redis
  readonly keyPrefix?: string
  /** The queue to declare and read, e.g. `billing.order-events.03`. */
  readonly queue: string
  /** Binding keys from `bindingKey()`, e.g. `order.*.03`; or give `partitions`. */
  readonly bindings?: readonly string[]
  /** Shorthand for `bindings: partitions.map((p) => bindingKey(p))`. */
  readonly partitions?: readonly number[]
  readonly handle: OrderEventHandler
  /** Unacked messages in flight (default 64, 1-1000); also how far a gap can be filled from behind. */
  readonly prefetch?: number
  /** How long a later version waits for a missing one (default 2000 ms). */
  readonly gapWaitMs?: number
  /** The queue's `x-max-length` (default 10,000); must match an existing queue's. */
  readonly maxLength?: number
  /** First and longest pause between retries of a throwing `handle` or Redis call (default 100 and 5000 ms). */
  readonly retryDelayMs?: { readonly initial: number; readonly max: number }
  readonly seenTtlMs?: number
  readonly versionTtlMs?: number
  /**
   * Durable memory that survives a Redis loss: e.g. `createMysqlConsumerState({ pool })`
   * on the consuming service's own database. Without it a Redis loss makes
   * some events unvouched (see the module comment).
   */
  readonly durableState?: ConsumerStateStore
  /** Without `durableState`: skip unvouched events (default) or hand them to `handle` with `ctx.unvouched`. */
  readonly unvouchedPolicy?: UnvouchedPolicy
  /** Called once per unvouched event (after it was skipped or handled); a throw is logged and ignored. */
  readonly onUnvouched?: (u: UnvouchedEvent) => void | Promise<void>
  /** How far the producer's clock (`occurredAt`) may run ahead of ours (default 5000 ms, 0-600,000). */
  readonly clockSkewMs?: number
  /** How long to wait for the broker at start (default 10,000 ms). */
  readonly connectTimeoutMs?: number
  readonly logger?: Logger
}

/** Running totals; a snapshot is returned by `counters`. */
export interface ConsumerCounters {
  /** `handle` resolved and the event was recorded. */
  handled: number
  /** Same event id again (redelivery, relay resend): skipped. */
  duplicates: number
  /** A version at or below the last handled one: skipped. */
  stale: number
  /** Events handled with a gap reported. */
  gaps: number
  /** Deliveries that arrived before an earlier version of their order and had to wait (reordered upstream). */
  waited: number
  /** Times `handle` threw (each retried). */
  failures: number
  /** Bodies that were not order events: dropped. */
  malformed: number
  // The next three are always set by a running consumer; optional only so totals
  // written down before they existed (reports, metrics fixtures) still type-check.
  /** Events reported as unvouched after a Redis loss (skipped or handled per `unvouchedPolicy`). */
  unvouched?: number
  /** Times this consumer noticed Redis had lost the queue's memory. */
  redisLosses?: number
  /** Orders whose last version was restored into Redis from `durableState`. */
  restored?: number
}

export interface OrderEventConsumer {
  readonly queue: string
  /** A snapshot of the running totals. */
  readonly counters: Readonly<ConsumerCounters>
  /** The newest unvouched events (at most 10,000), oldest first; `counters.unvouched` counts them all. */
  readonly unvouched: readonly UnvouchedEvent[]
  /** When this queue's Redis memory was last noticed lost (ISO 8601), if ever. */
  readonly redisLostAt: string | undefined
  /**
   * Stops taking messages, returns waiting and failing ones to the queue,
   * lets running `handle` calls finish (and acks them), then closes the
   * broker connection it opened. Idempotent.
   */
  close(): Promise<void>
}

const QUEUE_NAME = /^[A-Za-z0-9._:-]{1,200}$/

function intOption(v: number | undefined, fallback: number, min: number, max: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new ShardkitError('USAGE', `Expected ${name} to be a whole number from ${min} to ${max} (got ${String(v)})`, { option: name })
  }
  return v
}

/** The `x-arguments` every order-event queue is declared with. */
export function orderEventQueueArguments(maxLength = 10_000): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-max-length': maxLength,
    'x-overflow': 'reject-publish',
    'x-single-active-consumer': true,
  }
}

/**
 * Declares the queue and its bindings, then consumes. Resolves once the
 * consumer is registered with the broker (as the active consumer or a standby).
 * @throws ShardkitError `USAGE` for bad options; `PRECONDITION_FAILED` when the
 *   queue exists with other arguments; `SHARD_FAILED` when the broker does not answer;
 *   `REDIS_ERROR` when Redis does not answer at start
 * @example
 * const c = await createOrderEventConsumer({
 *   runtime: rt, queue: 'billing.order-events.03', bindings: [bindingKey(3)],
 *   handle: async (ev, { gap }) => { await billing.onOrderChanged(ev.orderId, ev.version, gap) },
 * })
 * // ...
 * await c.close()
 */
export async function createOrderEventConsumer(opts: OrderEventConsumerOptions): Promise<OrderEventConsumer> {
  const rt = opts.runtime
  const amqpUrl = opts.amqpUrl ?? rt?.config.events.url
  const exchange = opts.exchange ?? rt?.config.events.exchange
  const redis = opts.redis ?? rt?.redis()
  const keyPrefix = opts.keyPrefix ?? rt?.config.redis.keyPrefix
  if ((amqpUrl === undefined && opts.connection === undefined) || exchange === undefined || redis === undefined || keyPrefix === undefined) {
    throw new ShardkitError('USAGE', 'createOrderEventConsumer needs `runtime`, or `amqpUrl`, `exchange`, `redis` and `keyPrefix`', { option: 'runtime' })
  }
  if (!QUEUE_NAME.test(opts.queue) || opts.queue.startsWith('amq.')) {
    throw new ShardkitError('USAGE', 'Expected queue to be 1-200 characters of letters, digits and ._:- not starting with amq.', { option: 'queue' })
  }
  const bindings = [...(opts.bindings ?? []), ...(opts.partitions ?? []).map((p) => bindingKey(p))]
  if (bindings.length === 0 || bindings.some((b) => typeof b !== 'string' || b.length === 0 || b.length > 255)) {
    throw new ShardkitError('USAGE', 'Expected bindings (or partitions) to be a non-empty list of binding keys, e.g. [bindingKey(3)]', { option: 'bindings' })
  }
  if (typeof opts.handle !== 'function') throw new ShardkitError('USAGE', 'Expected handle to be a function', { option: 'handle' })
  const prefetch = intOption(opts.prefetch, 64, 1, 1000, 'prefetch')
  const gapWaitMs = intOption(opts.gapWaitMs, 2000, 0, 600_000, 'gapWaitMs')
  const maxLength = intOption(opts.maxLength, 10_000, 1, 10_000_000, 'maxLength')
  const retryInitial = intOption(opts.retryDelayMs?.initial, 100, 1, 60_000, 'retryDelayMs.initial')
  const retryMax = intOption(opts.retryDelayMs?.max, 5000, retryInitial, 600_000, 'retryDelayMs.max')
  const connectTimeoutMs = intOption(opts.connectTimeoutMs, 10_000, 1, 600_000, 'connectTimeoutMs')
  const clockSkewMs = intOption(opts.clockSkewMs, 5000, 0, 600_000, 'clockSkewMs')
  const unvouchedPolicy = opts.unvouchedPolicy ?? 'skip'
  if (unvouchedPolicy !== 'skip' && unvouchedPolicy !== 'handle') throw new ShardkitError('USAGE', `Expected unvouchedPolicy to be 'skip' or 'handle' (got ${String(unvouchedPolicy)})`, { option: 'unvouchedPolicy' })
  if (opts.onUnvouched !== undefined && typeof opts.onUnvouched !== 'function') throw new ShardkitError('USAGE', 'Expected onUnvouched to be a function', { option: 'onUnvouched' })
  const durable = opts.durableState
  if (durable !== undefined && (typeof durable.lastVersion !== 'function' || typeof durable.record !== 'function')) {
    throw new ShardkitError('USAGE', 'Expected durableState to have lastVersion() and record(), e.g. createMysqlConsumerState({ pool })', { option: 'durableState' })
  }
  const logger = (opts.logger ?? rt?.logger ?? silentLogger).child({ queue: opts.queue })
  const dedupe = createEventDedupe({ redis, keyPrefix, queue: opts.queue, seenTtlMs: opts.seenTtlMs, versionTtlMs: opts.versionTtlMs })

  const queueOptions = { queue: opts.queue, durable: true, arguments: orderEventQueueArguments(maxLength) }
  const exchanges = [{ exchange, type: 'topic', durable: true }]
  const queueBindings = [...new Set(bindings)].map((routingKey) => ({ exchange, queue: opts.queue, routingKey }))

  // openEventConnection sets heartbeats and timeouts so a half-open connection is noticed within seconds.
  const owned = opts.connection === undefined
  const conn =
    opts.connection ??
    openEventConnection(amqpUrl!, { name: `shardkit-consumer ${opts.queue}`, onError: (err) => logger.warn({ err: (err as Error).message }, 'order event consumer: broker connection error') })
  const closeOwned = () => (owned ? conn.close().catch(() => undefined) : Promise.resolve())
  try {
    await conn.onConnect(connectTimeoutMs, true)
    for (const e of exchanges) await conn.exchangeDeclare(e)
    await conn.queueDeclare(queueOptions)
    for (const b of queueBindings) await conn.queueBind(b)
  } catch (err) {
    await closeOwned()
    const code = (err as { code?: string }).code
    if (code === 'PRECONDITION_FAILED') {
      throw new ShardkitError('PRECONDITION_FAILED', `queue ${opts.queue} exists with other arguments than quorum, x-max-length ${maxLength}, reject-publish, single active consumer; delete it or choose another queue name`, { queue: opts.queue }, { cause: err })
    }
    throw new ShardkitError('SHARD_FAILED', `could not declare queue ${opts.queue} on the broker; check that RabbitMQ answers at events.url`, { queue: opts.queue, amqpCode: code ?? null }, { cause: err, retryable: true })
  }

  return new EventConsumer(conn, closeOwned, dedupe, opts.handle, logger, {
    queue: opts.queue,
    prefetch,
    gapWaitMs,
    retryInitial,
    retryMax,
    durable,
    unvouchedPolicy,
    onUnvouched: opts.onUnvouched,
    clockSkewMs,
    unvouchedKeep: 10_000,
    consumerProps: { queue: opts.queue, queueOptions, exchanges, queueBindings, qos: { prefetchCount: prefetch }, concurrency: prefetch, requeue: true },
  }).start(connectTimeoutMs)
}
