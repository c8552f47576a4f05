/**
 * `createPartitionConsumers`: one service's consumers for order events, by
 * the queue convention `<service>.order-events.<NN>` (one quorum queue per
 * partition, bound to `order.*.<NN>`, one active consumer each), sharing one
 * broker connection. This is how a service subscribes to all 12 partitions;
 * `shardctl events status --service <name>` reads the same queue names.
 */
import { ShardkitError } from '../errors.js'
import { openEventConnection } from './amqp.js'
import { createOrderEventConsumer, type ConsumerCounters, type OrderEventConsumer, type OrderEventConsumerOptions, type UnvouchedEvent } from './consumer.js'
import { EVENT_PARTITIONS } from './message.js'
import { conventionalQueues } from './status.js'

export interface PartitionConsumersOptions extends Omit<OrderEventConsumerOptions, 'queue' | 'bindings' | 'partitions'> {
  /** The consuming service, e.g. `billing`: queues are `billing.order-events.00` .. `.11`. */
  readonly service: string
  /** Which partitions this process consumes (default all 12). */
  readonly partitions?: readonly number[]
}

export interface PartitionConsumers {
  readonly consumers: readonly OrderEventConsumer[]
  /** The sum of every consumer's counters. */
  readonly counters: Readonly<ConsumerCounters>
  /** Every consumer's unvouched events after a Redis loss, by queue order. */
  readonly unvouched: readonly UnvouchedEvent[]
  /** Closes every consumer, then the shared connection if this group opened it. Idempotent. */
  close(): Promise<void>
}

/**
 * Starts one consumer per partition on a shared connection.
 * @throws ShardkitError like `createOrderEventConsumer`; consumers already started are closed first
 * @example
 * const group = await createPartitionConsumers({ runtime: rt, service: 'billing', handle })
 */
export async function createPartitionConsumers(opts: PartitionConsumersOptions): Promise<PartitionConsumers> {
  const partitions = opts.partitions ?? Array.from({ length: EVENT_PARTITIONS }, (_, p) => p)
  if (partitions.length === 0) throw new ShardkitError('USAGE', 'Expected partitions to name at least one partition', { option: 'partitions' })
  const url = opts.amqpUrl ?? opts.runtime?.config.events.url
  if (opts.connection === undefined && url === undefined) {
    throw new ShardkitError('USAGE', 'createPartitionConsumers needs `runtime`, `connection` or `amqpUrl`', { option: 'runtime' })
  }
  const queues = conventionalQueues(opts.service)
  const logger = opts.logger ?? opts.runtime?.logger
  const conn = opts.connection ?? openEventConnection(url!, { name: `shardkit-consumers ${opts.service}`, onError: (err) => logger?.warn({ err: (err as Error).message, service: opts.service }, 'order event consumers: broker connection error') })
  const owned = opts.connection === undefined
  const consumers: OrderEventConsumer[] = []
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      await Promise.allSettled(consumers.map((c) => c.close()))
      if (owned) await conn.close().catch(() => undefined)
    })())
  try {
    for (const p of new Set(partitions)) {
      const queue = queues[p]
      if (queue === undefined) throw new ShardkitError('USAGE', `partition must be a whole number from 0 to ${EVENT_PARTITIONS - 1} (got ${String(p)})`, { option: 'partitions' })
      consumers.push(await createOrderEventConsumer({ ...opts, connection: conn, queue, partitions: [p] }))
    }
  } catch (err) {
    await close()
    throw err
  }
  return {
    consumers,
    get counters() {
      const sum: ConsumerCounters = { handled: 0, duplicates: 0, stale: 0, gaps: 0, waited: 0, failures: 0, malformed: 0, unvouched: 0, redisLosses: 0, restored: 0 }
      for (const c of consumers) for (const k of Object.keys(sum) as (keyof ConsumerCounters)[]) sum[k] = (sum[k] ?? 0) + (c.counters[k] ?? 0)
      return sum
    },
    get unvouched() {
      return consumers.flatMap((c) => c.unvouched)
    },
    close,
  }
}
