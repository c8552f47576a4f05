/**
 * Issue 17, relay lease and `--once`:
 * - point 6: a reset lease table (the control database restored or the table
 *   recreated) must not make the relay republish forever: the new token is
 *   max(lease counter, token stamped in the outbox) + 1, so every confirmed
 *   event is marked and nothing is sent twice;
 * - `drain()` (`events relay --once`) prunes too: fifty cron-style runs keep
 *   the outbox bounded.
 * Exchange, queues and databases are this file's own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import type { Connection } from 'rabbitmq-client'
import type { Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import type { DualWriteStore } from '../../src/dualwrite/store.js'
import { legacyLocation } from '../../src/dualwrite/placement.js'
import { OUTBOX_TABLE, RELAY_TOKEN_TABLE } from '../../src/events/outbox.js'
import { OutboxRelay } from '../../src/events/relay.js'
import { RELAY_LEASE_TABLE } from '../../src/events/relay-lease.js'
import { dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { collect, deleteTopology, firstArrivals, misordered, withEvents } from '../support/events.js'
import { hostPools, newOrderId, orderRow } from './dualwrite-support.js'
import { openOutboxFleet } from './outbox-fleet.js'

const prefix = testPrefix('evlease')
const exchange = `${prefix}ex`
const base = withEvents(testFleetConfig({ prefix }), exchange)
const pools = hostPools(base)
const l = legacyLocation(base)
let rt: Runtime
let store: DualWriteStore
let amqp: Connection
let user = 6000
const queues: string[] = []

async function write(orders: number): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  await Promise.all(
    Array.from({ length: orders }, async () => {
      const u = String(++user)
      const id = newOrderId(u)
      await store.insert(orderRow(id, u, '700'), { event: { type: 'created' } })
      await store.update(id, { status: 'paid' }, { event: { type: 'paid' } })
      out.set(id, 2)
    }),
  )
  return out
}

const count = async (where = '1 = 1') => Number((await pools.get('legacy').query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(l.database, OUTBOX_TABLE)} WHERE ${where}`))[0][0]!.n)

beforeAll(async () => {
  ;({ rt, store, amqp } = await openOutboxFleet(base, pools, prefix))
})
afterEach(async () => {
  await pools.get('legacy').query(`DELETE FROM ${qualified(l.database, OUTBOX_TABLE)}`)
})
afterAll(async () => {
  await deleteTopology(amqp, { queues, exchanges: [exchange] })
  await amqp?.close()
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('relay lease token after a reset lease table (issue 17.6)', () => {
  it('takes a token above the one stamped in the outbox: confirmed == marked, nothing republished', async () => {
    const queue = `${prefix}q6`
    queues.push(queue)
    const c = await collect(amqp, exchange, queue)
    // a few takeovers raise the token stamped in the outbox database
    for (let i = 0; i < 3; i++) {
      const r = new OutboxRelay({ runtime: rt, outboxes: ['legacy'], holder: `r${i}` })
      await r.drain().finally(() => r.stop())
    }
    const [[stamp]] = await pools.get('legacy').query<RowDataPacket[]>(`SELECT token FROM ${qualified(l.database, RELAY_TOKEN_TABLE)} WHERE id = 1`)
    expect(Number(stamp!.token)).toBe(3)
    // the control database loses the lease table's rows (restored from an old backup, recreated)
    await rt.control().query(`DELETE FROM ${qualified(rt.config.control.database, RELAY_LEASE_TABLE)}`)
    const expected = await write(5)
    const relay = new OutboxRelay({ runtime: rt, outboxes: ['legacy'], holder: 'after-reset', idleMs: 10 })
    try {
      const r = await relay.drain({ maxPasses: 5 })
      expect(r[0]).toMatchObject({ held: true, published: 10, blocked: false })
      await c.waitFor(10)
      expect(await count('published_at IS NULL')).toBe(0)
      // and a running relay publishes nothing more: no endless republish
      relay.start()
      const more = await write(1)
      await c.waitFor(12)
      await new Promise((res) => setTimeout(res, 50))
      const { byOrder, duplicates } = firstArrivals(c.events)
      expect(duplicates).toBe(0)
      expect(c.events).toHaveLength(12)
      expect(misordered(byOrder, new Map([...expected, ...more]))).toEqual([])
      expect(relay.stats()[0]!.token).toBeGreaterThan(3)
    } finally {
      await relay.stop()
      await c.close()
    }
  })
})

describe('events relay --once prunes (drain)', () => {
  it('fifty drains keep the outbox bounded', async () => {
    const queue = `${prefix}qonce`
    queues.push(queue)
    const c = await collect(amqp, exchange, queue)
    const sizes: number[] = []
    try {
      for (let i = 0; i < 50; i++) {
        await write(2)
        const relay = new OutboxRelay({ runtime: rt, outboxes: ['legacy'], retentionMs: 0 })
        try {
          const r = await relay.drain()
          expect(r[0]).toMatchObject({ published: 4, blocked: false })
        } finally {
          await relay.stop()
        }
        sizes.push(await count())
      }
      await c.waitFor(200)
      // each run prunes what the runs before it published: at most the last run's rows remain
      expect(Math.max(...sizes), `outbox sizes ${sizes.join(',')}`).toBeLessThanOrEqual(8)
      expect(await count('published_at IS NULL')).toBe(0)
    } finally {
      await c.close()
    }
  }, 120_000)
})
