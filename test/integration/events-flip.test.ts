/**
 * Order events across the write flip, under load, on the real MariaDB and
 * RabbitMQ: writers create orders and move them along the lifecycle while
 * the write primary flips legacy -> user shards (write-shards) and back
 * (rollback to dual-write). The relay of the old primary is held down around
 * each flip, so the new primary's relay must wait for it (the stage-version
 * barrier): without the barrier the new primary's events would overtake.
 * Asserts, from one queue: every order's versions arrive contiguous and in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { Connection } from 'rabbitmq-client'
import { isShardkitError } from '../../src/errors.js'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { primaryDatabases } from '../../src/dualwrite/placement.js'
import { poolFor } from '../../src/dualwrite/connections.js'
import { createOutboxHook, OUTBOX_TABLE } from '../../src/events/outbox.js'
import { OutboxRelay } from '../../src/events/relay.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { collect, deleteTopology, firstArrivals, misordered, testAmqpUrl, withEvents } from '../support/events.js'
import { FixedStage, hostPools, newOrderId, orderRow } from './dualwrite-support.js'

const prefix = testPrefix('evflip')
const exchange = `${prefix}ex`
const queue = `${prefix}q`
const config = withEvents(testFleetConfig({ prefix }), exchange)
const pools = hostPools(config)
const legacyOutbox = ['legacy']
const userOutboxes = primaryDatabases(config).filter((p) => p.side === 'user').map((p) => p.name)
let rt: Runtime
let stage: FixedStage
let store: DualWriteStore
let amqp: Connection

const NEXT = ['paid', 'accepted', 'delivering', 'completed'] as const
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function pending(side: 'legacy' | 'user'): Promise<number> {
  let n = 0
  for (const p of primaryDatabases(config).filter((x) => x.side === side)) {
    const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(p.database, OUTBOX_TABLE)} WHERE published_at IS NULL`)
    n += Number(rows[0]!.n)
  }
  return n
}

/** Writers until `stop`: each creates an order and moves it to completed, retrying fence refusals. Returns order -> last committed version. */
function load(workers: number): { stop: () => Promise<Map<string, number>>; writes: () => number } {
  const versions = new Map<string, number>()
  let running = true
  let writes = 0
  const retry = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await fn()
      } catch (err) {
        if (isShardkitError(err, 'FENCE_REJECTED') && err.retryable) {
          await sleep(5)
          continue
        }
        throw err
      }
    }
  }
  const loops = Array.from({ length: workers }, async (_, w) => {
    let i = 0
    while (running) {
      const u = String(5000 + w * 1000 + (i++ % 1000))
      const id = newOrderId(u)
      await retry(() => store.insert(orderRow(id, u, '900'), { event: { type: 'created' } }))
      versions.set(id, 1)
      writes++
      for (const s of NEXT) {
        if (!running) break
        const row = await retry(() => store.update(id, { status: s }, { event: { type: s } }))
        versions.set(id, Number(row.version))
        writes++
      }
    }
  })
  return {
    writes: () => writes,
    stop: async () => {
      running = false
      await Promise.all(loops)
      return versions
    },
  }
}

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  stage = new FixedStage(config, pools.get, rt)
  await stage.set('legacy')
  await stage.set('dual-write')
  store = new DualWriteStore({ runtime: rt, stage, onPrimaryWrite: createOutboxHook() })
  amqp = new Connection({ url: testAmqpUrl(), connectionName: `${prefix} test` })
  amqp.on('error', () => undefined)
  await amqp.onConnect(10_000)
})
afterAll(async () => {
  await deleteTopology(amqp, { queues: [queue], exchanges: [exchange] })
  await amqp?.close()
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('events across the write flip', () => {
  it('flip to the shards and back under load: every order versions contiguous and in order, none lost', async () => {
    const c = await collect(amqp, exchange, queue)
    const userRelay = new OutboxRelay({ runtime: rt, outboxes: userOutboxes, idleMs: 5, holder: 'user-relay' })
    let legacyRelay = new OutboxRelay({ runtime: rt, outboxes: legacyOutbox, idleMs: 5, holder: 'legacy-relay-1' })
    userRelay.start()
    legacyRelay.start()
    const traffic = load(6)
    try {
      await sleep(400)
      // The old primary's relay goes down just before the flip: its backlog grows.
      await legacyRelay.stop()
      while ((await pending('legacy')) < 10) await sleep(20)
      await stage.set('write-shards')
      const before = traffic.writes()
      while (traffic.writes() < before + 60) await sleep(20)
      // New-primary events exist, but the barrier holds them while legacy has a backlog.
      expect(await pending('legacy')).toBeGreaterThan(0)
      expect(await pending('user')).toBeGreaterThan(0)
      const held = userRelay.stats().find((s) => s.waitingOn !== null)
      expect(held?.waitingOn?.outbox).toBe('legacy')
      expect(userRelay.stats().reduce((n, s) => n + s.published, 0)).toBe(0)
      legacyRelay = new OutboxRelay({ runtime: rt, outboxes: legacyOutbox, idleMs: 5, holder: 'legacy-relay-2' })
      legacyRelay.start()
      await sleep(400)

      // Rollback: the user relay goes down, the primary flips back to legacy.
      await userRelay.stop()
      while ((await pending('user')) < 10) await sleep(20)
      await stage.set('dual-write')
      const before2 = traffic.writes()
      while (traffic.writes() < before2 + 60) await sleep(20)
      expect(legacyRelay.stats()[0]!.waitingOn).toMatchObject({ stageVersion: stage.state.version - 1 })
      const userRelay2 = new OutboxRelay({ runtime: rt, outboxes: userOutboxes, idleMs: 5, holder: 'user-relay-2' })
      userRelay2.start()
      await sleep(300)
      const expected = await traffic.stop()
      const total = [...expected.values()].reduce((n, v) => n + v, 0)
      await c.waitFor(total, 30_000)
      const deadline = Date.now() + 15_000
      while ((await pending('legacy')) + (await pending('user')) > 0 && Date.now() < deadline) await sleep(50)
      await userRelay2.stop()
      const { byOrder, duplicates } = firstArrivals(c.events)
      expect(duplicates).toBe(0)
      expect(misordered(byOrder, expected)).toEqual([])
      expect(total).toBeGreaterThan(150)
    } finally {
      await traffic.stop()
      await legacyRelay.stop()
      await userRelay.stop()
      await c.close()
    }
  }, 90_000)
})
