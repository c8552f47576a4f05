/**
 * Issue 17 point 1: back-pressure. Three services x twelve partitions, one
 * service's partition-00 queue capped at 3 with reject-publish and no
 * consumer (full). The relay publishes per queue (`services`), so:
 * - every other partition and service receives everything about as fast as
 *   in a reference round measured first in the same run (no full queue);
 * - healthy queues get every event exactly once (deliveries counted per
 *   queue and event id: the nacked publishes are not retried to them);
 * - `events status` shows the events held for the full queue;
 * - once the full queue drains, every held event arrives there, in version
 *   order per order.
 * The exchange, the 36 queues and the databases are this file's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import type { Connection, Consumer } from 'rabbitmq-client'
import type { Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import type { DualWriteStore } from '../../src/dualwrite/store.js'
import { legacyLocation } from '../../src/dualwrite/placement.js'
import { OUTBOX_TABLE } from '../../src/events/outbox.js'
import { OutboxRelay } from '../../src/events/relay.js'
import { readEventsStatus, conventionalQueues } from '../../src/events/status.js'
import { bindingKey, decodeEvent, partitionOfUser, type OrderEvent } from '../../src/events/message.js'
import { dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { deleteTopology, withEvents } from '../support/events.js'
import { hostPools, newOrderId, orderRow } from './dualwrite-support.js'
import { openOutboxFleet } from './outbox-fleet.js'

const prefix = testPrefix('evbackp')
const exchange = `${prefix}ex`
const base = withEvents(testFleetConfig({ prefix }), exchange)
const pools = hostPools(base)
const SERVICES = [`${prefix}a`, `${prefix}b`, `${prefix}c`]
const FULL = conventionalQueues(SERVICES[0]!)[0]!
const CAP = 3
const IDLE_MS = 20
let rt: Runtime
let store: DualWriteStore
let amqp: Connection
const queues = SERVICES.flatMap(conventionalQueues)
const consumers: Consumer[] = []
/** Deliveries per queue, in arrival order. */
const got = new Map<string, OrderEvent[]>()
const consumerErrors: string[] = []

function consume(queue: string): Consumer {
  const list = got.get(queue) ?? []
  got.set(queue, list)
  // The consumer re-declares the queue: with the capped one's arguments, or the broker refuses it.
  const args = queue === FULL ? { arguments: { 'x-max-length': CAP, 'x-overflow': 'reject-publish' as const } } : {}
  const c = amqp.createConsumer({ queue, queueOptions: { durable: false, ...args }, qos: { prefetchCount: 200 } }, (msg) => {
    list.push(decodeEvent(Buffer.isBuffer(msg.body) ? msg.body : JSON.stringify(msg.body)))
  })
  c.on('error', (err) => consumerErrors.push(`${queue}: ${String(err)}`))
  consumers.push(c)
  return c
}

/** `count` users per partition (for the partitions given), from `start` on. */
function usersFor(parts: Map<number, number>, start: number): string[] {
  const left = new Map(parts)
  const out: string[] = []
  for (let u = start; [...left.values()].some((n) => n > 0); u++) {
    const p = partitionOfUser(String(u))
    const n = left.get(p) ?? 0
    if (n > 0) {
      out.push(String(u))
      left.set(p, n - 1)
    }
  }
  return out
}

/** One order per user, three events each (created, paid, accepted); returns the events' orders with their user. */
async function write(users: string[]): Promise<Map<string, string>> {
  const orders = new Map<string, string>()
  await Promise.all(
    users.map(async (u) => {
      const id = newOrderId(u)
      orders.set(id, u)
      await store.insert(orderRow(id, u, '700'), { event: { type: 'created' } })
      await store.update(id, { status: 'paid' }, { event: { type: 'paid' } })
      await store.update(id, { status: 'accepted' }, { event: { type: 'accepted' } })
    }),
  )
  return orders
}

/** Queues that should hold all 3 events of each of `orders`: the partition's queue of every service but `except`. */
function complete(orders: Map<string, string>, except: string[] = []): boolean {
  for (const [order, user] of orders) {
    const part = partitionOfUser(user)
    for (const svc of SERVICES) {
      const q = conventionalQueues(svc)[part]!
      if (except.includes(q)) continue
      if ((got.get(q) ?? []).filter((e) => e.orderId === order).length < 3) return false
    }
  }
  return true
}

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now()
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return Date.now() - t0
}

/** Deliveries beyond the first per (queue, event id), over `qs`. */
function duplicates(qs: readonly string[]): string[] {
  const out: string[] = []
  for (const q of qs) {
    const seen = new Set<string>()
    for (const e of got.get(q) ?? []) {
      if (seen.has(e.eventId)) out.push(`${q}: ${e.orderId} v${e.version}`)
      seen.add(e.eventId)
    }
  }
  return out
}

beforeAll(async () => {
  ;({ rt, store, amqp } = await openOutboxFleet(base, pools, prefix))
  await amqp.exchangeDeclare({ exchange, type: 'topic', durable: true })
  // The queues as createPartitionConsumers lays them out: one per service and partition, bound to its partition.
  for (const svc of SERVICES) {
    for (const [p, queue] of conventionalQueues(svc).entries()) {
      await amqp.queueDeclare({ queue, durable: false, ...(queue === FULL ? { arguments: { 'x-max-length': CAP, 'x-overflow': 'reject-publish' } } : {}) })
      await amqp.queueBind({ exchange, queue, routingKey: bindingKey(p) })
    }
  }
  for (const q of queues) if (q !== FULL) consume(q)
}, 60_000)
afterAll(async () => {
  await Promise.all(consumers.map((c) => c.close().catch(() => undefined)))
  await deleteTopology(amqp, { queues, exchanges: [exchange] })
  await amqp?.close()
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('relay back-pressure (issue 17.1)', () => {
  it('a full queue delays no other partition or service, sends no duplicate to a healthy queue, and gets every held event in order once it drains', async () => {
    const relay = new OutboxRelay({ runtime: rt, outboxes: ['legacy'], services: SERVICES, batchSize: 20, idleMs: IDLE_MS, maxBackoffMs: 400 })
    relay.start()
    try {
      const others = new Map(Array.from({ length: 11 }, (_, i) => [i + 1, 4] as [number, number]))
      // Reference round, no full queue involved: 52 orders over partitions 01..11.
      const refUsers = usersFor(new Map([...others].map(([p, n]) => [p, p <= 8 ? n + 1 : n])), 10_000)
      const t0 = Date.now()
      const ref = await write(refUsers)
      await waitUntil(() => complete(ref), 30_000, 'reference round delivered')
      const refMs = Date.now() - t0

      // Back-pressure round: as many orders, 8 of them in partition 00, whose queue of service a takes 3 events.
      const bpUsers = [...usersFor(new Map([[0, 8]]), 20_000), ...usersFor(others, 30_000)]
      expect(bpUsers).toHaveLength(refUsers.length)
      const t1 = Date.now()
      const bp = await write(bpUsers)
      await waitUntil(() => complete(bp, [FULL]), 30_000, 'back-pressure round delivered to the healthy queues')
      const bpMs = Date.now() - t1
      // Within a few reference rounds plus a few poll intervals: a stall would never finish.
      expect(bpMs, `back-pressure round ${bpMs} ms, reference ${refMs} ms`).toBeLessThanOrEqual(3 * refMs + 10 * IDLE_MS)

      const p0Orders = [...bp].filter(([, u]) => partitionOfUser(u) === 0).map(([o]) => o)
      expect(p0Orders).toHaveLength(8)
      // The full queue holds its cap; the rest is owed to it, and status says so (once the batch in
      // hand is marked: deliveries come before the mark).
      await waitUntil(async () => (await readEventsStatus(rt)).totalDepth === 0, 10_000, 'outbox handed off')
      const st = await readEventsStatus(rt, { queues: [FULL], cap: CAP })
      const lg = st.outboxes.find((o) => o.primary === 'legacy')!
      expect(st.queues[0]).toMatchObject({ queue: FULL, messages: CAP, fill: 1 })
      expect(lg.held).toBe(24 - CAP)
      expect(lg.heldTargets).toEqual([expect.objectContaining({ target: FULL, count: 24 - CAP })])
      expect(lg.depth).toBe(0)
      expect(duplicates(queues.filter((q) => q !== FULL))).toEqual([])

      // Drain the full queue: every held event arrives, in version order per order.
      consume(FULL)
      await waitUntil(() => (got.get(FULL) ?? []).length >= 24, 30_000, 'held events delivered to the drained queue')
      await waitUntil(async () => (await readEventsStatus(rt)).totalHeld === 0, 10_000, 'retry table empty')
      const byOrder = new Map<string, number[]>()
      for (const e of got.get(FULL)!) byOrder.set(e.orderId, [...(byOrder.get(e.orderId) ?? []), e.version])
      expect([...byOrder.keys()].sort()).toEqual([...p0Orders].sort())
      for (const [order, versions] of byOrder) expect(versions, order).toEqual([1, 2, 3])
      expect(duplicates(queues)).toEqual([])
      expect(consumerErrors).toEqual([])
      const l = legacyLocation(base)
      const [rows] = await pools.get('legacy').query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(l.database, OUTBOX_TABLE)} WHERE published_at IS NULL`)
      expect(Number(rows[0]!.n)).toBe(0)
      expect(relay.stats()[0]).toMatchObject({ owed: 0, retried: 24 - CAP })
    } finally {
      await relay.stop()
    }
  }, 120_000)
})
