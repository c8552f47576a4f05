/**
 * The order event on the wire: the contract between the outbox relay and
 * every consumer. An event announces a change (ids, type, version, time),
 * never the order's data: consumers fetch details through the API.
 *
 * Routing: a topic exchange; routing key `order.<type>.<partition>` where the
 * partition is the user shard mod {@link EVENT_PARTITIONS}. All events of one
 * order share a user shard, so they share a partition and a queue; a queue
 * per partition with one active consumer keeps each order's events in order
 * without the consistent-hash plugin.
 */
import { ShardkitError } from '../errors.js'
import { shardOfKey } from '../router/shard-function.js'

export const EVENT_TYPES = ['created', 'paid', 'accepted', 'delivering', 'completed', 'cancelled'] as const
export type OrderEventType = (typeof EVENT_TYPES)[number]

/** 120 user shards over 12 partitions: 10 shards each. A divisor of 120, so a partition never splits a shard. */
export const EVENT_PARTITIONS = 12

export interface OrderEvent {
  /** Unique and time-ordered (a UUIDv7-like string). */
  readonly eventId: string
  readonly orderId: string
  readonly userId: string
  readonly merchantId: string
  readonly type: OrderEventType
  /** The order's row version after the change: 1 at creation, +1 per change. */
  readonly version: number
  /** When the primary transaction wrote the event, ISO 8601 with ms, UTC. */
  readonly occurredAt: string
}

/** The partition of a user (and of every order of that user). */
export function partitionOfUser(userId: string | number): number {
  return shardOfKey(userId, 'user id') % EVENT_PARTITIONS
}

/** `order.paid.07` */
export function routingKeyOf(event: Pick<OrderEvent, 'type' | 'userId'>): string {
  return `order.${event.type}.${String(partitionOfUser(event.userId)).padStart(2, '0')}`
}

/** The binding key for one partition and optionally one type: `order.*.07`, `order.paid.07`. */
export function bindingKey(partition: number, type?: OrderEventType): string {
  if (!Number.isInteger(partition) || partition < 0 || partition >= EVENT_PARTITIONS) {
    throw new ShardkitError('USAGE', `partition must be a whole number from 0 to ${EVENT_PARTITIONS - 1} (got ${String(partition)})`, { argument: 'partition' })
  }
  return `order.${type ?? '*'}.${String(partition).padStart(2, '0')}`
}

export function encodeEvent(event: OrderEvent): Buffer {
  return Buffer.from(JSON.stringify(event))
}

const DECIMAL = /^(0|[1-9][0-9]{0,18})$/
/** User and merchant ids: every key the router routes (up to BIGINT UNSIGNED and DECIMAL(20,0), src/router/shard-function.ts). */
const KEY = /^(0|[1-9][0-9]{0,19})$/

/**
 * Parses a message body; anything that is not a well-formed event is a typed error.
 * @throws ShardkitError `USAGE` naming the field
 */
export function decodeEvent(body: Buffer | string): OrderEvent {
  let v: unknown
  try {
    v = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'))
  } catch {
    throw new ShardkitError('USAGE', 'order event body is not JSON')
  }
  const o = v as Record<string, unknown>
  const bad = (field: string, want: string) => new ShardkitError('USAGE', `order event field ${field} must be ${want}`, { field })
  if (typeof o !== 'object' || o === null) throw new ShardkitError('USAGE', 'order event body must be a JSON object')
  if (typeof o.eventId !== 'string' || o.eventId.length === 0 || o.eventId.length > 64) throw bad('eventId', 'a string of 1-64 characters')
  for (const f of ['orderId', 'userId', 'merchantId'] as const) {
    if (typeof o[f] !== 'string' || !(f === 'orderId' ? DECIMAL : KEY).test(o[f])) throw bad(f, 'a decimal string')
  }
  if (!EVENT_TYPES.includes(o.type as OrderEventType)) throw bad('type', `one of ${EVENT_TYPES.join(', ')}`)
  if (typeof o.version !== 'number' || !Number.isSafeInteger(o.version) || o.version < 1) throw bad('version', 'a whole number from 1')
  if (typeof o.occurredAt !== 'string' || Number.isNaN(Date.parse(o.occurredAt))) throw bad('occurredAt', 'an ISO 8601 time')
  return {
    eventId: o.eventId,
    orderId: o.orderId as string,
    userId: o.userId as string,
    merchantId: o.merchantId as string,
    type: o.type as OrderEventType,
    version: o.version,
    occurredAt: o.occurredAt,
  }
}
