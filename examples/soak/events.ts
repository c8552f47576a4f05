/**
 * The soak's consumer side: two consuming services on every partition, each
 * order's events judged at the end.
 * - `durable`: consumers with a durable store (a MySQL table in the soak's
 *   own "service" database): across a Redis flush or restart, `handle` must
 *   see every acknowledged order's events exactly once, in version order.
 * - `redis-only`: no durable store: after a Redis loss an order may instead be
 *   reported as unvouched; the check counts those and requires zero
 *   unexplained orders (a problem on an order that was never reported).
 * Both consumer groups use a private redis-server (test/support/redis-instance.ts)
 * so the `redis-flush` fault never touches the shared Redis; one queue's
 * consumer can be stopped and restarted (the `queue-full` fault).
 * Memory: a few numbers per order; fine for a soak's tens of thousands.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { Redis } from 'ioredis'
import { qualified, quoteIdent, type Runtime } from '../../src/index.js'
import { createOrderEventConsumer, type ConsumerCounters, type OrderEventConsumer, type OrderEventConsumerOptions, type UnvouchedEvent } from '../../src/events/consumer.js'
import { createMysqlConsumerState } from '../../src/events/consumer-state.js'
import { openEventConnection } from '../../src/events/amqp.js'
import { EVENT_PARTITIONS } from '../../src/events/message.js'
import { conventionalQueues } from '../../src/events/status.js'
import { createMysqlPool, type MysqlPool } from '../../src/runtime/mysql.js'
import { startRedisInstance, type RedisInstance } from '../../test/support/redis-instance.js'

/** The soak queues' cap (`x-max-length`): small, so the queue-full fault fills one quickly. */
export const SOAK_QUEUE_CAP = 2_000

interface Seen {
  versions: number[]
  eventIds: Set<string>
  problem?: string
  /** Gaps reported after a Redis loss (Redis forgot the earlier versions): honest, not a failure by itself. */
  lossGaps: number
}

/** One consuming service's verdict. */
export interface ServiceVerdict {
  readonly service: string
  readonly durable: boolean
  readonly acknowledged: number
  /** Orders whose handled versions are exactly 1..final, once each, in order. */
  readonly exactlyOnceInOrder: number
  /** Orders not exactly once in order, but reported as unvouched (explained). */
  readonly unvouchedOrders: number
  /** Unvouched events reported in all. */
  readonly unvouchedEvents: number
  /** Orders with a problem and no unvouched report: must be 0. */
  readonly unexplained: number
  readonly samples: readonly string[]
  readonly counters: Readonly<ConsumerCounters>
  readonly ok: boolean
}

export interface SoakEventsReport {
  readonly services: readonly ServiceVerdict[]
  readonly drainMs: number
  readonly ok: boolean
}

/** The consumer side the faults act on. */
export interface SoakConsumers {
  readonly redis: RedisInstance
  /** Queue names by service, partition order. */
  readonly queues: (service: 'durable' | 'redis-only') => readonly string[]
  /** Stops the consumer of one queue (its messages stay in the queue). */
  pause(queue: string): Promise<void>
  /** Starts it again. */
  resume(queue: string): Promise<void>
  /** Waits until every acknowledged order's events are in (or `timeoutMs`), then judges. */
  settle(ids: readonly string[], timeoutMs?: number): Promise<SoakEventsReport>
  /** Stops every consumer and the private Redis; with `deleteQueues` removes the queues and the exchange. Idempotent. */
  close(deleteQueues: boolean): Promise<void>
}

const CHUNK = 2_000

/** Starts both services' consumers (call before the first order is written). */
export async function startSoakConsumers(rt: Runtime, o: { prefix: string; stateDatabase: string; log: (l: string) => void }): Promise<SoakConsumers> {
  const inst = await startRedisInstance()
  const redis = new Redis(inst.url, { retryStrategy: () => 100 })
  redis.on('error', () => undefined)
  const admin = createMysqlPool(rt.config.control.url, { connectionLimit: 2 })
  let pool: MysqlPool
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(o.stateDatabase)}`)
  } finally {
    await admin.end()
  }
  pool = createMysqlPool(rt.config.control.url, { database: o.stateDatabase, connectionLimit: 3 })
  const state = createMysqlConsumerState({ pool })
  await state.ensureTable()
  const conn = openEventConnection(rt.config.events.url, { name: 'shardkit-soak consumers' })

  const services = (['durable', 'redis-only'] as const).map((name) => ({
    name,
    durable: name === 'durable',
    queues: conventionalQueues(`${o.prefix}${name}`),
    byOrder: new Map<string, Seen>(),
    unvouched: new Map<string, UnvouchedEvent[]>(),
    consumers: new Map<string, OrderEventConsumer>(),
    /** Totals of consumers already closed (paused), so counters survive a pause. */
    closedTotals: [] as Readonly<ConsumerCounters>[],
  }))
  type Service = (typeof services)[number]
  const optionsFor = (s: Service, queue: string, partition: number): OrderEventConsumerOptions => ({
    connection: conn,
    exchange: rt.config.events.exchange,
    redis,
    keyPrefix: `${o.prefix.replace(/_$/, '')}:`,
    queue,
    partitions: [partition],
    maxLength: SOAK_QUEUE_CAP,
    gapWaitMs: 2_000,
    ...(s.durable ? { durableState: state } : { onUnvouched: (u) => void s.unvouched.set(u.orderId, [...(s.unvouched.get(u.orderId) ?? []), u]) }),
    handle: (event, ctx) => {
      let seen = s.byOrder.get(event.orderId)
      if (!seen) s.byOrder.set(event.orderId, (seen = { versions: [], eventIds: new Set(), lossGaps: 0 }))
      const last = seen.versions.at(-1) ?? 0
      if (seen.eventIds.has(event.eventId)) seen.problem ??= `event ${event.eventId} (v${event.version}) handled twice`
      else if (event.version !== last + 1) seen.problem ??= `v${event.version} after v${last}`
      else if (ctx.gap) seen.lossGaps++ // in order after all: the gap was Redis forgetting, not an event missing
      seen.versions.push(event.version)
      seen.eventIds.add(event.eventId)
    },
  })
  const find = (queue: string) => {
    for (const s of services) {
      const p = s.queues.indexOf(queue)
      if (p >= 0) return { s, p }
    }
    throw new Error(`not a soak queue: ${queue}`)
  }
  const startOne = async (queue: string) => {
    const { s, p } = find(queue)
    s.consumers.set(queue, await createOrderEventConsumer(optionsFor(s, queue, p)))
  }
  for (const s of services) for (let p = 0; p < EVENT_PARTITIONS; p++) await startOne(s.queues[p]!)

  const finalVersions = async (ids: readonly string[]): Promise<Map<string, number>> => {
    const pk = quoteIdent(rt.config.legacy.primaryKey)
    const out = new Map<string, number>()
    for (const sh of rt.config.dimensions.user.shards) {
      for (let i = 0; i < ids.length; i += CHUNK) {
        const [rows] = await rt.host(sh.host).query<RowDataPacket[]>(`SELECT ${pk} AS id, ${quoteIdent('version')} AS v FROM ${qualified(sh.database, sh.table)} WHERE ${pk} IN (?)`, [ids.slice(i, i + CHUNK)])
        for (const r of rows) out.set(String(r.id), Number(r.v))
      }
    }
    return out
  }
  const countersOf = (s: Service): Required<ConsumerCounters> => {
    const sum: Required<ConsumerCounters> = { handled: 0, duplicates: 0, stale: 0, gaps: 0, waited: 0, failures: 0, malformed: 0, unvouched: 0, redisLosses: 0, restored: 0 }
    for (const c of [...s.closedTotals, ...[...s.consumers.values()].map((x) => x.counters)]) for (const k of Object.keys(sum) as (keyof ConsumerCounters)[]) sum[k] += c[k] ?? 0
    return sum
  }
  let closed: Promise<void> | undefined

  return {
    redis: inst,
    queues: (name) => services.find((s) => s.name === name)!.queues,
    async pause(queue) {
      const { s } = find(queue)
      const c = s.consumers.get(queue)
      if (!c) return
      s.consumers.delete(queue)
      await c.close()
      s.closedTotals.push(c.counters)
    },
    async resume(queue) {
      if (!find(queue).s.consumers.has(queue)) await startOne(queue)
    },
    async settle(ids, timeoutMs = 120_000) {
      const t0 = performance.now()
      const unique = [...new Set(ids)]
      const want = await finalVersions(unique)
      // An order is settled for a service once it has all its versions, or a report explains it.
      const settled = (s: Service, id: string) => (s.byOrder.get(id)?.versions.length ?? 0) >= (want.get(id) ?? 0) || s.unvouched.has(id)
      let pending = services.flatMap((s) => unique.filter((id) => !settled(s, id)).map((id) => [s, id] as const))
      while (pending.length > 0 && performance.now() - t0 < timeoutMs) {
        await new Promise((r) => setTimeout(r, 250))
        pending = pending.filter(([s, id]) => !settled(s, id))
      }
      const drainMs = Math.round(performance.now() - t0)
      if (pending.length > 0) o.log(`  events: ${pending.length} (service, order) pairs still missing events after ${timeoutMs} ms`)
      const verdicts = services.map((s): ServiceVerdict => {
        let good = 0
        let explained = 0
        const unexplained: string[] = []
        for (const id of unique) {
          const seen = s.byOrder.get(id)
          const final = want.get(id)
          const got = seen?.versions ?? []
          let problem: string | undefined
          if (final === undefined) problem = 'not in its user shard'
          else if (seen?.problem) problem = seen.problem
          else if (got.length !== final) problem = `${got.length}/${final} events`
          if (problem === undefined) good++
          else if (s.unvouched.has(id)) explained++
          else unexplained.push(`${id}: ${problem}`)
        }
        const unvouchedEvents = [...s.unvouched.values()].reduce((a, l) => a + l.length, 0)
        const counters = countersOf(s)
        const ok = unexplained.length === 0 && (!s.durable || (explained === 0 && unvouchedEvents === 0))
        return { service: s.name, durable: s.durable, acknowledged: unique.length, exactlyOnceInOrder: good, unvouchedOrders: explained, unvouchedEvents, unexplained: unexplained.length, samples: unexplained.slice(0, 5), counters, ok }
      })
      return { services: verdicts, drainMs, ok: verdicts.every((v) => v.ok) }
    },
    close(deleteQueues) {
      closed ??= (async () => {
        for (const s of services) {
          await Promise.allSettled([...s.consumers.values()].map((c) => c.close()))
          s.consumers.clear()
        }
        if (deleteQueues) {
          for (const s of services) for (const queue of s.queues) await conn.queueDelete({ queue }).catch(() => undefined)
          await conn.exchangeDelete({ exchange: rt.config.events.exchange }).catch(() => undefined)
        }
        await conn.close().catch(() => undefined)
        redis.disconnect()
        await inst.destroy()
        await pool.end().catch(() => undefined)
      })()
      return closed
    },
  }
}
