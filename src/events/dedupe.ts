/**
 * What a consumer queue remembers in Redis so `handle` runs once per event
 * and in version order per order: the last version handled for each order
 * and the ids of events handled recently. `record` checks and writes both in
 * one Lua script, so two consumers racing on one event record it once.
 *
 * Keys (one hash tag per order, so a Redis Cluster keeps them in one slot):
 *   <prefix>ev:<queue>:{<orderId>}:v            last handled version
 *   <prefix>ev:<queue>:{<orderId>}:e:<eventId>  event handled (value 1)
 */
import type { Redis } from 'ioredis'
import { ShardkitError } from '../errors.js'
import type { OrderEvent } from './message.js'
import type { OrderMemory } from './ordering.js'

/** Default: seen event ids are kept a day (redeliveries and relay resends come within minutes). */
export const DEFAULT_SEEN_TTL_MS = 86_400_000
/** Default: last versions are kept 30 days; an order idle longer starts again from "unknown" (its next event reports a gap). */
export const DEFAULT_VERSION_TTL_MS = 30 * 86_400_000

/** Outcome of recording a handled event. */
export type RecordOutcome = 'recorded' | 'duplicate' | 'stale'

// KEYS[1] version key, KEYS[2] event key; ARGV[1] version, ARGV[2] version ttl, ARGV[3] seen ttl
const RECORD = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 'duplicate' end
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return 'stale' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 'recorded'
`

/** The Redis memory of one consumer queue. */
export interface EventDedupe {
  /** What is known about the event's order and whether this event was handled. @throws ShardkitError `REDIS_ERROR` */
  peek(event: Pick<OrderEvent, 'orderId' | 'eventId'>): Promise<OrderMemory>
  /**
   * Records a handled event atomically: `recorded` when it is new and newer
   * than the last version, else what it turned out to be (someone else
   * recorded it first). @throws ShardkitError `REDIS_ERROR`
   */
  record(event: Pick<OrderEvent, 'orderId' | 'eventId' | 'version'>): Promise<RecordOutcome>
}

export interface EventDedupeOptions {
  readonly redis: Redis
  /** `config.redis.keyPrefix`. */
  readonly keyPrefix: string
  /** The consumer's queue: each queue (consumer group) keeps its own memory. */
  readonly queue: string
  readonly seenTtlMs?: number
  readonly versionTtlMs?: number
}

function positiveMs(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new ShardkitError('USAGE', `Expected ${name} to be a whole number of milliseconds from 1 and up (got ${String(v)})`, { option: name })
  }
  return v
}

/** The key of an order's last handled version (exported for tests and the operator view). */
export function versionKey(keyPrefix: string, queue: string, orderId: string): string {
  return `${keyPrefix}ev:${queue}:{${orderId}}:v`
}

function eventKey(keyPrefix: string, queue: string, orderId: string, eventId: string): string {
  return `${keyPrefix}ev:${queue}:{${orderId}}:e:${eventId}`
}

function redisError(op: string, queue: string, err: unknown): ShardkitError {
  return new ShardkitError('REDIS_ERROR', `order event ${op} failed in Redis; check that Redis answers (config redis.url)`, { queue }, { cause: err, retryable: true })
}

/**
 * Creates the Redis memory of one consumer queue. Does not own `redis`.
 * @throws ShardkitError `USAGE` for a bad TTL
 */
export function createEventDedupe(opts: EventDedupeOptions): EventDedupe {
  const seenTtl = positiveMs(opts.seenTtlMs, DEFAULT_SEEN_TTL_MS, 'seenTtlMs')
  const versionTtl = positiveMs(opts.versionTtlMs, DEFAULT_VERSION_TTL_MS, 'versionTtlMs')
  const { redis, keyPrefix, queue } = opts
  return {
    async peek(event) {
      let res: [Error | null, unknown][] | null
      try {
        res = await redis
          .multi()
          .exists(eventKey(keyPrefix, queue, event.orderId, event.eventId))
          .get(versionKey(keyPrefix, queue, event.orderId))
          .exec()
      } catch (err) {
        throw redisError('lookup', queue, err)
      }
      const failed = res?.find(([e]) => e !== null)
      if (!res || failed) throw redisError('lookup', queue, failed?.[0])
      return { seen: res[0]![1] === 1, lastVersion: Number(res[1]![1] ?? 0) }
    },
    async record(event) {
      try {
        const out = await redis.eval(
          RECORD,
          2,
          versionKey(keyPrefix, queue, event.orderId),
          eventKey(keyPrefix, queue, event.orderId, event.eventId),
          String(event.version),
          String(versionTtl),
          String(seenTtl),
        )
        return out as RecordOutcome
      } catch (err) {
        throw redisError('record', queue, err)
      }
    },
  }
}
