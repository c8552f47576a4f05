/**
 * What a consumer queue remembers in Redis so `handle` runs once per event
 * and in version order per order: the last version handled for each order,
 * the ids of events handled recently, and an epoch marker that tells when
 * Redis lost that memory. `peek` and `record` are Lua scripts that read the
 * marker in the same step as the order's keys, so two consumers racing on
 * one event record it once, and a flush or restart (all keys gone at once)
 * is never mistaken for "this order is new".
 *
 * Keys:
 *   <prefix>ev:<queue>:epoch                     marker `<uuid>|<lossAtMs>`, no TTL
 *   <prefix>ev:<queue>:{<orderId>}:v            last handled version
 *   <prefix>ev:<queue>:{<orderId>}:e:<eventId>  event handled (value 1)
 *
 * Loss detection: the marker is written (SET NX, `lossAtMs` 0) when a consumer
 * starts. A script that finds it gone writes a new one whose `lossAtMs` is
 * now, so every consumer of the queue sees the same loss time, also after a
 * restart of its own. Limits: one Redis (the marker and an order's keys are
 * in different hash slots, so Redis Cluster is not supported by this shape);
 * Redis must not evict keys (`maxmemory-policy noeviction`), since an evicted
 * version key without a lost marker looks like a new order; a loss while no
 * consumer of the queue runs looks like a first start unless a durable store
 * is configured (consumer-state.ts), which is read whenever Redis has nothing.
 */
import { randomUUID } from 'node:crypto'
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

/** The queue's epoch marker as read by a script: `lossAtMs` 0 means no loss seen since the first start. */
export interface EpochMarker {
  readonly epoch: string
  readonly lossAtMs: number
}

// KEYS[1] marker; ARGV[1] marker to write when it is gone
const MARKER = `
local m = redis.call('GET', KEYS[1])
if not m then redis.call('SET', KEYS[1], ARGV[1]); m = ARGV[1] end
`

// KEYS[1] marker, KEYS[2] event key, KEYS[3] version key
const PEEK = `${MARKER}
return {m, redis.call('EXISTS', KEYS[2]), redis.call('GET', KEYS[3]) or ''}
`

// KEYS[1] marker, KEYS[2] version key, KEYS[3] event key;
// ARGV[1] new marker, ARGV[2] version, ARGV[3] version ttl, ARGV[4] seen ttl, ARGV[5] 'full' | 'seen'
const RECORD = `${MARKER}
if redis.call('EXISTS', KEYS[3]) == 1 then return {'duplicate', m} end
if ARGV[5] == 'seen' then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
  return {'recorded', m}
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) <= last then return {'stale', m} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return {'recorded', m}
`

// KEYS[1] version key; ARGV[1] version, ARGV[2] ttl: raise only, never lower
const RESTORE = `
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > last then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 1
`

/** What `peek` returns: the order's memory and the marker read with it. */
export interface PeekResult extends OrderMemory {
  readonly marker: EpochMarker
}

/** The Redis memory of one consumer queue. */
export interface EventDedupe {
  /** Writes the marker if there is none (a first start) and returns the current one. @throws ShardkitError `REDIS_ERROR` */
  start(): Promise<EpochMarker>
  /** What is known about the event's order and whether this event was handled, with the marker. @throws ShardkitError `REDIS_ERROR` */
  peek(event: Pick<OrderEvent, 'orderId' | 'eventId'>): Promise<PeekResult>
  /**
   * Records a handled event atomically: `recorded` when it is new and newer
   * than the last version, else what it turned out to be (someone else
   * recorded it first). `seenOnly` records the event id but not the version
   * (an event handled or skipped without a known last version).
   * @throws ShardkitError `REDIS_ERROR`
   */
  record(event: Pick<OrderEvent, 'orderId' | 'eventId' | 'version'>, seenOnly?: boolean): Promise<{ outcome: RecordOutcome; marker: EpochMarker }>
  /** Raises the order's last version to `version` (from the durable store); never lowers it. @throws ShardkitError `REDIS_ERROR` */
  restore(orderId: string, version: number): Promise<void>
}

export interface EventDedupeOptions {
  readonly redis: Redis
  /** `config.redis.keyPrefix`. */
  readonly keyPrefix: string
  /** The consumer's queue: each queue (consumer group) keeps its own memory. */
  readonly queue: string
  readonly seenTtlMs?: number
  readonly versionTtlMs?: number
  /** The clock for a new marker's loss time (tests inject one). */
  readonly now?: () => number
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

/** What one noted marker means: the same epoch, a reply from before a loss already noticed, or a new loss. */
export type EpochNote = 'same' | 'stale' | 'lost'

/**
 * A consumer's view of its queue's epoch. Replies come back in order, but
 * the awaits between a reply and the code that notes it differ (a lookup has
 * more of them than a record), so a lookup issued before a flush can be noted
 * after a record issued after it. An epoch once replaced is never current
 * again (every new marker has a fresh uuid), so a marker seen before is a
 * late reply, not another loss (CI counted one flush three times).
 */
export class EpochTracker {
  private readonly retired = new Set<string>()

  constructor(private marker: EpochMarker) {}

  get current(): EpochMarker {
    return this.marker
  }

  note(m: EpochMarker): EpochNote {
    if (m.epoch === this.marker.epoch) return 'same'
    if (this.retired.has(m.epoch)) return 'stale'
    this.retired.add(this.marker.epoch)
    // Losses are rare: the last 64 replaced epochs cover any reply still in flight.
    if (this.retired.size > 64) this.retired.delete(this.retired.values().next().value!)
    this.marker = m
    return 'lost'
  }
}

/** The key of a queue's epoch marker (exported for tests and the operator view). */
export function epochKey(keyPrefix: string, queue: string): string {
  return `${keyPrefix}ev:${queue}:epoch`
}

function eventKey(keyPrefix: string, queue: string, orderId: string, eventId: string): string {
  return `${keyPrefix}ev:${queue}:{${orderId}}:e:${eventId}`
}

function redisError(op: string, queue: string, err: unknown): ShardkitError {
  return new ShardkitError('REDIS_ERROR', `order event ${op} failed in Redis; check that Redis answers (config redis.url)`, { queue }, { cause: err, retryable: true })
}

function parseMarker(v: unknown, queue: string): EpochMarker {
  const s = typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : ''
  const bar = s.lastIndexOf('|')
  const lossAtMs = Number(s.slice(bar + 1))
  if (bar <= 0 || !Number.isSafeInteger(lossAtMs) || lossAtMs < 0) {
    throw new ShardkitError('INTERNAL', `the epoch marker of queue ${queue} in Redis is not <uuid>|<ms>; delete key <keyPrefix>ev:${queue}:epoch and restart the consumer`, { queue })
  }
  return { epoch: s.slice(0, bar), lossAtMs }
}

/**
 * Creates the Redis memory of one consumer queue. Does not own `redis`.
 * @throws ShardkitError `USAGE` for a bad TTL
 */
export function createEventDedupe(opts: EventDedupeOptions): EventDedupe {
  const seenTtl = positiveMs(opts.seenTtlMs, DEFAULT_SEEN_TTL_MS, 'seenTtlMs')
  const versionTtl = positiveMs(opts.versionTtlMs, DEFAULT_VERSION_TTL_MS, 'versionTtlMs')
  const now = opts.now ?? Date.now
  const { redis, keyPrefix, queue } = opts
  const marker = epochKey(keyPrefix, queue)
  const lostMarker = () => `${randomUUID()}|${now()}`
  return {
    async start() {
      try {
        await redis.set(marker, `${randomUUID()}|0`, 'NX')
        return parseMarker(await redis.get(marker), queue)
      } catch (err) {
        if (err instanceof ShardkitError) throw err
        throw redisError('start', queue, err)
      }
    },
    async peek(event) {
      let res: unknown
      try {
        res = await redis.eval(PEEK, 3, marker, eventKey(keyPrefix, queue, event.orderId, event.eventId), versionKey(keyPrefix, queue, event.orderId), lostMarker())
      } catch (err) {
        throw redisError('lookup', queue, err)
      }
      const [m, seen, last] = res as [string, number, string]
      return { marker: parseMarker(m, queue), seen: seen === 1, lastVersion: Number(last || 0) }
    },
    async record(event, seenOnly = false) {
      let res: unknown
      try {
        res = await redis.eval(
          RECORD,
          3,
          marker,
          versionKey(keyPrefix, queue, event.orderId),
          eventKey(keyPrefix, queue, event.orderId, event.eventId),
          lostMarker(),
          String(event.version),
          String(versionTtl),
          String(seenTtl),
          seenOnly ? 'seen' : 'full',
        )
      } catch (err) {
        throw redisError('record', queue, err)
      }
      const [outcome, m] = res as [RecordOutcome, string]
      return { outcome, marker: parseMarker(m, queue) }
    },
    async restore(orderId, version) {
      try {
        await redis.eval(RESTORE, 1, versionKey(keyPrefix, queue, orderId), String(version), String(versionTtl))
      } catch (err) {
        throw redisError('restore', queue, err)
      }
    },
  }
}
