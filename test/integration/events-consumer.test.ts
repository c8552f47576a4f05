/**
 * The order-event consumer against the real RabbitMQ and Redis: duplicates
 * and stale versions dropped, out-of-order deliveries put back in version
 * order, a gap that never fills reported after the wait, a crash mid-handle
 * redelivered and handled once, a queue at its cap refusing publishes (never
 * dropping one), and a queue declared with other arguments refused.
 * Each test gets its own exchange, queue and Redis key prefix, removed after.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { Connection, type Publisher } from 'rabbitmq-client'
import { isShardkitError } from '../../src/errors.js'
import { createPartitionConsumers } from '../../src/events/consumer-group.js'
import { createOrderEventConsumer, type HandleContext } from '../../src/events/consumer.js'
import { EVENT_PARTITIONS, bindingKey, encodeEvent, partitionOfUser, routingKeyOf, type OrderEvent } from '../../src/events/message.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { testPrefix, testRedisUrl } from '../support/db.js'
import { ALL_PARTITIONS, consumerHarness } from '../support/consumer-harness.js'

const AMQP_URL = process.env.SHARDKIT_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const prefix = testPrefix('evconsumer')
let conn: Connection
let pub: Publisher
let redis: Redis
const { cleanups, names, ev, publish, until, start, cleanup } = consumerHarness({ prefix, amqpUrl: AMQP_URL, conn: () => conn, pub: () => pub, redis: () => redis })

interface Call {
  event: OrderEvent
  ctx: HandleContext
  at: number
}

/** A handler that records every successful call. */
function recorder() {
  const calls: Call[] = []
  return { calls, handle: (event: OrderEvent, ctx: HandleContext) => void calls.push({ event, ctx, at: Date.now() }) }
}

const versionsOf = (calls: Call[], orderId: string) => calls.filter((c) => c.event.orderId === orderId).map((c) => c.event.version)

beforeAll(async () => {
  conn = new Connection({ url: AMQP_URL, connectionTimeout: 5_000, retryLow: 100, retryHigh: 1_000 })
  conn.on('error', () => undefined)
  try {
    await conn.onConnect(10_000, true)
  } catch (err) {
    throw new Error(`RabbitMQ does not answer at ${AMQP_URL.replace(/\/\/[^@]*@/, '//')} (set SHARDKIT_TEST_AMQP_URL): ${(err as Error).message}`)
  }
  pub = conn.createPublisher({ confirm: true, maxAttempts: 1 })
  redis = new Redis(testRedisUrl())
})

afterEach(async () => {
  await cleanup()
})

afterAll(async () => {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
  await pub?.close()
  await conn?.close()
})

describe('createOrderEventConsumer', () => {
  it('drops a duplicate delivery: the same event twice is handled once', async () => {
    const nm = names()
    const r = recorder()
    const c = await start(nm, r.handle)
    const e1 = ev('101', 1)
    const e2 = ev('101', 2)
    await publish(nm.exchange, [e1, e1, e2, e2])
    await until(() => c.counters.handled + c.counters.duplicates === 4, 'four deliveries')
    expect(versionsOf(r.calls, '101')).toEqual([1, 2])
    expect(r.calls.map((x) => x.event.eventId)).toEqual([e1.eventId, e2.eventId])
    expect(c.counters).toMatchObject({ handled: 2, duplicates: 2, stale: 0, gaps: 0, waited: 0 })
  })

  it('drops a stale version: an older version with a new event id is skipped', async () => {
    const nm = names()
    const r = recorder()
    const c = await start(nm, r.handle)
    await publish(nm.exchange, [ev('102', 1), ev('102', 2), ev('102', 1), ev('102', 2)])
    await until(() => c.counters.handled + c.counters.stale === 4, 'four deliveries')
    expect(versionsOf(r.calls, '102')).toEqual([1, 2])
    expect(c.counters).toMatchObject({ handled: 2, stale: 2, duplicates: 0 })
  })

  it('puts out-of-order deliveries back in version order when the missing one arrives within the wait', async () => {
    const nm = names()
    const r = recorder()
    const c = await start(nm, r.handle, { gapWaitMs: 10_000 })
    const t0 = Date.now()
    // order 103 arrives 3,1,4,2; order 104 in order, interleaved: it must not wait behind 103.
    await publish(nm.exchange, [ev('103', 3), ev('104', 1), ev('103', 1), ev('103', 4), ev('104', 2), ev('103', 2)])
    await until(() => c.counters.handled === 6, 'six events handled')
    expect(versionsOf(r.calls, '103')).toEqual([1, 2, 3, 4])
    expect(versionsOf(r.calls, '104')).toEqual([1, 2])
    expect(r.calls.every((x) => x.ctx.gap === undefined)).toBe(true)
    expect(c.counters.gaps).toBe(0)
    expect(c.counters.waited).toBeGreaterThanOrEqual(2) // 103 v3 and v4 (at least) arrived early
    // filled by the arrival, not by the 10 s timeout
    expect(Date.now() - t0).toBeLessThan(8_000)
  })

  it('reports a gap that never fills after gapWaitMs, then treats the late version as stale', async () => {
    const nm = names()
    const r = recorder()
    const gapWaitMs = 400
    const c = await start(nm, r.handle, { gapWaitMs })
    await publish(nm.exchange, [ev('105', 1)])
    await until(() => c.counters.handled === 1, 'version 1')
    const sent = Date.now()
    await publish(nm.exchange, [ev('105', 3)])
    await until(() => c.counters.handled === 2, 'version 3 with a gap')
    const v3 = r.calls[1]!
    expect(v3.event.version).toBe(3)
    expect(v3.ctx.gap).toEqual({ expected: 2, got: 3 })
    expect(v3.at - sent).toBeGreaterThanOrEqual(gapWaitMs - 5)
    expect(c.counters.gaps).toBe(1)
    await publish(nm.exchange, [ev('105', 2), ev('105', 4)])
    await until(() => c.counters.handled === 3 && c.counters.stale === 1, 'late version 2 stale, version 4 handled')
    expect(versionsOf(r.calls, '105')).toEqual([1, 3, 4])
    expect(r.calls[2]!.ctx.gap).toBeUndefined()
  })

  it('retries a throwing handle: later versions of that order wait, other orders go on, each handled once', async () => {
    const nm = names()
    const ok: Call[] = []
    let failuresLeft = 3
    const c = await start(nm, (event, ctx) => {
      if (event.orderId === '106' && event.version === 1 && failuresLeft-- > 0) throw new Error('downstream unavailable')
      ok.push({ event, ctx, at: Date.now() })
    }, { gapWaitMs: 100 })
    await publish(nm.exchange, [ev('106', 1), ev('106', 2), ev('107', 1)])
    await until(() => c.counters.handled === 3, 'three events handled')
    expect(versionsOf(ok, '106')).toEqual([1, 2])
    expect(versionsOf(ok, '107')).toEqual([1])
    expect(ok.find((x) => x.event.orderId === '106' && x.event.version === 1)!.ctx.attempt).toBe(4)
    // version 2 waited behind the failing version 1 even past gapWaitMs: no gap reported
    expect(ok.every((x) => x.ctx.gap === undefined)).toBe(true)
    expect(c.counters).toMatchObject({ handled: 3, failures: 3, gaps: 0, duplicates: 0 })
  })

  it('a consumer that crashes mid-handle: the broker redelivers to the standby, which handles it once', async () => {
    const nm = names()
    const proxy: TcpProxy = await startTcpProxy({ targetPort: Number(new URL(AMQP_URL).port || 5672) })
    cleanups.push(() => proxy.close())
    const proxied = AMQP_URL.replace(/@[^/:]+(:\d+)?/, `@127.0.0.1:${proxy.port}`)
    const succeeded: Call[] = []
    let crash: ((err: Error) => void) | undefined
    let entered = 0
    // A: the active consumer (single active consumer: it started first); its handle hangs, then "crashes".
    const a = await start(nm, (event) => {
      entered++
      return new Promise<void>((_, reject) => (crash = reject))
    }, { amqpUrl: proxied })
    const b = await start(nm, (event, ctx) => void succeeded.push({ event, ctx, at: Date.now() }))
    const e1 = ev('108', 1)
    await publish(nm.exchange, [e1, ev('108', 2)])
    await until(() => entered === 1, 'A inside handle')
    expect(b.counters.handled).toBe(0)
    proxy.cut() // A's connection dies with the message unacked
    await until(() => b.counters.handled === 2, 'B handles both after the takeover')
    crash!(new Error('process died'))
    await until(() => a.counters.failures === 1, 'A notices its handle failed')
    // A's delivery belongs to a dead channel: it must not call handle again.
    await new Promise((r) => setTimeout(r, 300))
    expect(entered).toBe(1)
    expect(succeeded.map((x) => x.event.version)).toEqual([1, 2])
    expect(succeeded[0]!.event.eventId).toBe(e1.eventId)
    expect(succeeded[0]!.ctx.redelivered).toBe(true)
    expect(a.counters.handled).toBe(0)
    proxy.restore()
  })

  it('a half-open active consumer (blackholed) is given up within seconds: the standby takes over', async () => {
    const nm = names()
    const proxy = await startTcpProxy({ targetPort: Number(new URL(AMQP_URL).port || 5672) })
    cleanups.push(() => proxy.close())
    let crash: ((err: Error) => void) | undefined
    const a = await start(nm, () => new Promise<void>((_, reject) => (crash = reject)), { amqpUrl: AMQP_URL.replace(/@[^/:]+(:\d+)?/, `@127.0.0.1:${proxy.port}`) })
    const byB: OrderEvent[] = []
    const b = await start(nm, (e) => void byB.push(e))
    await publish(nm.exchange, [ev('112', 1)])
    await until(() => crash !== undefined, 'A inside handle')
    const t0 = Date.now()
    proxy.blackhole() // the socket stays open, nothing passes: only heartbeats can tell
    await until(() => b.counters.handled === 1, 'B takes over', 30_000)
    const takeoverMs = Date.now() - t0
    crash!(new Error('gave up'))
    expect(byB.map((e) => e.version)).toEqual([1])
    expect(a.counters.handled).toBe(0)
    // 5 s heartbeats: the broker drops A after two missed ones
    expect(takeoverMs).toBeLessThan(20_000)
    process.stderr.write(`[events-consumer] half-open takeover after ${takeoverMs} ms\n`)
  }, 60_000)

  it('connection lost after handle resolved but before the ack: redelivered after reconnect, dropped as a duplicate', async () => {
    const nm = names()
    const proxy = await startTcpProxy({ targetPort: Number(new URL(AMQP_URL).port || 5672) })
    cleanups.push(() => proxy.close())
    const calls: Call[] = []
    let release: (() => void) | undefined
    let gated = false
    const c = await start(nm, async (event, ctx) => {
      if (event.version === 2 && !gated) {
        gated = true
        await new Promise<void>((r) => (release = r))
      }
      calls.push({ event, ctx, at: Date.now() })
    }, { amqpUrl: AMQP_URL.replace(/@[^/:]+(:\d+)?/, `@127.0.0.1:${proxy.port}`) })
    await publish(nm.exchange, [ev('111', 1), ev('111', 2)])
    await until(() => release !== undefined, 'version 2 inside handle')
    proxy.cut()
    release!() // handle resolves and Redis records it, but the ack cannot reach the broker
    await until(() => c.counters.handled === 2, 'version 2 recorded')
    proxy.restore()
    await until(() => c.counters.duplicates === 1, 'the redelivery of version 2 dropped')
    await publish(nm.exchange, [ev('111', 3)])
    await until(() => c.counters.handled === 3, 'version 3 after the reconnect')
    expect(versionsOf(calls, '111')).toEqual([1, 2, 3])
    expect(c.counters).toMatchObject({ handled: 3, duplicates: 1, gaps: 0, failures: 0 })
  })

  it('Redis unreachable (before handle and between handle and record): nothing handled blind, nothing twice', async () => {
    const nm = names()
    const redisProxy = await startTcpProxy({ targetPort: Number(new URL(testRedisUrl()).port || 6379) })
    cleanups.push(() => redisProxy.close())
    const viaProxy = new Redis(`redis://127.0.0.1:${redisProxy.port}`, { maxRetriesPerRequest: 1, connectTimeout: 1_000, retryStrategy: () => 50 })
    viaProxy.on('error', () => undefined)
    cleanups.push(async () => viaProxy.disconnect())
    const calls: Call[] = []
    const c = await start(nm, (event, ctx) => {
      calls.push({ event, ctx, at: Date.now() })
      // Redis goes away while version 2 is being handled: its record must wait, not re-run handle.
      if (event.version === 2) redisProxy.cut()
    }, { redis: viaProxy, gapWaitMs: 200 })
    await publish(nm.exchange, [ev('113', 1), ev('113', 2), ev('113', 3)])
    await until(() => calls.length === 2, 'version 2 handled')
    // Redis down: version 3 cannot be checked, so it must not be handled.
    await new Promise((r) => setTimeout(r, 500))
    expect(calls.length).toBe(2)
    expect(c.counters.handled).toBe(1)
    redisProxy.restore()
    await until(() => c.counters.handled === 3, 'versions 2 (recorded late) and 3')
    expect(versionsOf(calls, '113')).toEqual([1, 2, 3])
    expect(c.counters).toMatchObject({ handled: 3, duplicates: 0, gaps: 0, failures: 0 })
  })

  it('close() mid-handle lets the handle finish and acks it: the next consumer does not see it again', async () => {
    const nm = names()
    const calls: Call[] = []
    let release: (() => void) | undefined
    const c1 = await start(nm, async (event, ctx) => {
      if (event.version === 1) await new Promise<void>((r) => (release = r))
      calls.push({ event, ctx, at: Date.now() })
    })
    await publish(nm.exchange, [ev('114', 1)])
    await until(() => release !== undefined, 'version 1 inside handle')
    const closing = c1.close()
    release!()
    await closing
    expect(c1.counters.handled).toBe(1)
    const c2 = await start(nm, (event, ctx) => void calls.push({ event, ctx, at: Date.now() }))
    await publish(nm.exchange, [ev('114', 2)])
    await until(() => c2.counters.handled === 1, 'version 2 on the next consumer')
    expect(versionsOf(calls, '114')).toEqual([1, 2])
    expect(c2.counters).toMatchObject({ handled: 1, duplicates: 0, stale: 0, gaps: 0 })
  })

  it('close() during a gap wait returns the held event to the queue; the next consumer handles it', async () => {
    const nm = names()
    const r1 = recorder()
    const c1 = await start(nm, r1.handle, { gapWaitMs: 60_000 })
    await publish(nm.exchange, [ev('109', 1), ev('109', 3)])
    await until(() => c1.counters.handled === 1, 'version 1')
    const t0 = Date.now()
    await c1.close()
    await c1.close() // idempotent
    expect(Date.now() - t0).toBeLessThan(5_000)
    const r2 = recorder()
    const c2 = await start(nm, r2.handle, { gapWaitMs: 100 })
    await until(() => c2.counters.handled === 1, 'version 3 redelivered')
    expect(r2.calls[0]!.event.version).toBe(3)
    expect(r2.calls[0]!.ctx.gap).toEqual({ expected: 2, got: 3 })
    expect(versionsOf(r1.calls, '109')).toEqual([1])
  })

  it('drops a body that is not an order event and goes on', async () => {
    const nm = names()
    const r = recorder()
    const c = await start(nm, r.handle)
    await pub.send({ exchange: nm.exchange, routingKey: bindingKey(3).replace('*', 'paid') }, Buffer.from('{"eventId":"x","orderId":"not a number"}'))
    await publish(nm.exchange, [ev('110', 1)])
    await until(() => c.counters.handled === 1 && c.counters.malformed === 1, 'one malformed, one handled')
    expect(versionsOf(r.calls, '110')).toEqual([1])
  })

  it('a queue at its cap refuses publishes with a nack (reject-publish) and drops nothing it accepted', async () => {
    const nm = names()
    const maxLength = 5
    const idle = await start(nm, () => undefined, { maxLength })
    await idle.close() // the queue stays (durable), nobody consumes
    const events = Array.from({ length: 12 }, (_, i) => ev(String(200 + i), 1))
    const accepted: OrderEvent[] = []
    let rejected = 0
    for (const e of events) {
      try {
        await pub.send({ exchange: nm.exchange, routingKey: routingKeyOf(e), durable: true }, encodeEvent(e))
        accepted.push(e)
      } catch (err) {
        expect((err as { code?: string }).code).toBe('NACK')
        rejected++
      }
    }
    expect(rejected).toBeGreaterThan(0)
    expect(accepted.length + rejected).toBe(events.length)
    // a quorum queue admits the publish that reaches the cap, then refuses
    expect(accepted.length).toBeGreaterThanOrEqual(maxLength)
    expect(accepted.length).toBeLessThanOrEqual(maxLength + 1)
    const { messageCount } = await conn.queueDeclare({ queue: nm.queue, passive: true })
    expect(messageCount).toBe(accepted.length)
    const r = recorder()
    const c = await start(nm, r.handle, { maxLength })
    await until(() => c.counters.handled === accepted.length, 'every accepted event handled')
    expect(r.calls.map((x) => x.event.eventId).sort()).toEqual(accepted.map((e) => e.eventId).sort())
  })

  it('refuses a queue that exists with other arguments, naming it', async () => {
    const nm = names()
    const first = await start(nm, () => undefined, { maxLength: 50 })
    await first.close()
    const err = await start(nm, () => undefined).then(() => undefined, (e: unknown) => e)
    expect(isShardkitError(err, 'PRECONDITION_FAILED'), String(err)).toBe(true)
    expect((err as Error).message).toContain(nm.queue)
  })

  it('createPartitionConsumers: one queue per partition by convention, each order in its partition, in order', async () => {
    const nm = names()
    const service = `${prefix}svc`
    for (let p = 0; p < EVENT_PARTITIONS; p++) cleanups.push(() => conn.queueDelete({ queue: `${service}.order-events.${String(p).padStart(2, '0')}` }))
    const byQueue = new Map<string, OrderEvent[]>()
    const group = await createPartitionConsumers({
      amqpUrl: AMQP_URL, exchange: nm.exchange, redis, keyPrefix: nm.keyPrefix, service,
      handle: (e, ctx) => void byQueue.set(ctx.queue, [...(byQueue.get(ctx.queue) ?? []), e]),
    })
    cleanups.unshift(() => group.close())
    expect(group.consumers.map((c) => c.queue)).toEqual(Array.from({ length: 12 }, (_, p) => `${service}.order-events.${String(p).padStart(2, '0')}`))
    const events = Array.from({ length: 40 }, (_, i) => [ev(String(300 + i), 1), ev(String(300 + i), 2)]).flat()
    await publish(nm.exchange, events)
    await until(() => group.counters.handled === events.length, 'all events handled')
    const handled = [...byQueue.values()].flat()
    for (const [queue, evs] of byQueue) for (const e of evs) expect(queue).toBe(`${service}.order-events.${String(partitionOfUser(e.userId)).padStart(2, '0')}`)
    expect(byQueue.size).toBeGreaterThan(1)
    for (let i = 0; i < 40; i++) expect(versionsOf(handled.map((event) => ({ event, ctx: {} as HandleContext, at: 0 })), String(300 + i))).toEqual([1, 2])
    await group.close()
    await group.close()
  })

  it('rejects bad options with a message naming the option', async () => {
    const nm = names()
    const base = { amqpUrl: AMQP_URL, exchange: nm.exchange, redis, keyPrefix: nm.keyPrefix, queue: nm.queue, bindings: ALL_PARTITIONS, handle: () => undefined }
    for (const [bad, option] of [
      [{ prefetch: 0 }, 'prefetch'],
      [{ gapWaitMs: -1 }, 'gapWaitMs'],
      [{ bindings: [] }, 'bindings'],
      [{ queue: 'amq.nope' }, 'queue'],
    ] as const) {
      const err = await createOrderEventConsumer({ ...base, ...bad }).then(() => undefined, (e: unknown) => e)
      expect(isShardkitError(err, 'USAGE'), String(err)).toBe(true)
      expect((err as Error).message).toContain(option)
    }
  })
})
