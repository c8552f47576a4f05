/**
 * The events outbox on the real MariaDB: the event row is written in the
 * primary write transaction (same database, committed or rolled back with
 * the order), carries the fence version, and only primary writes emit:
 * secondary copies and journal replays never add an event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { DualWriteStore, type PrimaryWriteContext } from '../../src/dualwrite/store.js'
import { drainJournal, insertJournalEntry } from '../../src/dualwrite/journal.js'
import { legacyLocation, primaryDatabases, shardLocation } from '../../src/dualwrite/placement.js'
import { poolFor } from '../../src/dualwrite/connections.js'
import { createOutboxHook, eventTypeOf, OUTBOX_TABLE } from '../../src/events/outbox.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { FixedStage, hostPools, newOrderId, orderRow, physicalRow } from './dualwrite-support.js'

const prefix = testPrefix('evoutbox')
const config = testFleetConfig({ prefix })
const pools = hostPools(config)
let rt: Runtime
let stage: FixedStage
let store: DualWriteStore
let failAfterHook = false
const outboxHook = createOutboxHook()

async function outboxRows(orderId?: string): Promise<(RowDataPacket & { primary: string })[]> {
  const out: (RowDataPacket & { primary: string })[] = []
  for (const p of primaryDatabases(config)) {
    const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(
      `SELECT * FROM ${qualified(p.database, OUTBOX_TABLE)} ${orderId ? 'WHERE order_id = ?' : ''} ORDER BY id`,
      orderId ? [orderId] : [],
    )
    for (const r of rows) out.push(Object.assign(r, { primary: p.name }))
  }
  return out
}

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  stage = new FixedStage(config, pools.get, rt)
  await stage.set('legacy')
  store = new DualWriteStore({
    runtime: rt,
    stage,
    onPrimaryWrite: async (ctx: PrimaryWriteContext) => {
      await outboxHook(ctx)
      if (failAfterHook) throw new Error('injected failure after the outbox insert')
    },
  })
})
afterAll(async () => {
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('events outbox: the event commits with the order', () => {
  it('provisioning creates the outbox in every primary database and nowhere else', async () => {
    const [rows] = await pools.get('legacy').query<RowDataPacket[]>(
      `SELECT table_schema AS db FROM information_schema.tables WHERE table_name = ? AND table_schema LIKE ? ORDER BY 1`,
      [OUTBOX_TABLE, `${prefix}%`],
    )
    expect(rows.map((r) => String(r.db)).sort()).toEqual(primaryDatabases(config).map((p) => p.database).sort())
  })

  it('create and each status change append one event in the primary database, versions 1..n, with the fence version', async () => {
    const id = newOrderId('2001')
    await store.insert(orderRow(id, '2001', '601'), { event: { type: 'created' } })
    await store.update(id, { status: 'paid' }, { event: { type: 'paid' } })
    await store.update(id, { status: 'accepted' }) // no explicit event: the status after the change
    const rows = await outboxRows(id)
    expect(rows.map((r) => [r.primary, r.type, Number(r.version), Number(r.stage_version)])).toEqual([
      ['legacy', 'created', 1, stage.state.version],
      ['legacy', 'paid', 2, stage.state.version],
      ['legacy', 'accepted', 3, stage.state.version],
    ])
    expect(rows.every((r) => r.published_at === null && String(r.user_id) === '2001' && String(r.merchant_id) === '601')).toBe(true)
    const ids = rows.map((r) => String(r.event_id))
    expect(new Set(ids).size).toBe(3)
    expect([...ids].sort()).toEqual(ids) // UUIDv7: time-ordered as text
  })

  it('a write that rolls back after the outbox insert leaves neither the order nor its event', async () => {
    const id = newOrderId('2002')
    failAfterHook = true
    try {
      await expect(store.insert(orderRow(id, '2002', '602'))).rejects.toThrow()
    } finally {
      failAfterHook = false
    }
    expect(await physicalRow(pools.get('legacy'), legacyLocation(config), id)).toBeUndefined()
    expect(await outboxRows(id)).toHaveLength(0)
    // and an update that rolls back keeps the events at the committed versions
    await store.insert(orderRow(id, '2002', '602'))
    failAfterHook = true
    try {
      await expect(store.update(id, { status: 'paid' })).rejects.toThrow()
    } finally {
      failAfterHook = false
    }
    expect((await outboxRows(id)).map((r) => Number(r.version))).toEqual([1])
  })

  it('secondary writes and journal replays emit nothing; after write-shards the user shard emits', async () => {
    await stage.set('dual-write')
    const id = newOrderId('2003')
    await store.insert(orderRow(id, '2003', '603'))
    await store.update(id, { status: 'paid' })
    await store.flush()
    // the copies exist on both secondaries
    expect(await physicalRow(pools.get(shardLocation(config, 'user', '2003').host), shardLocation(config, 'user', '2003'), id)).toBeDefined()
    // a journal replay of the same order (as the drainer does) copies again and emits nothing
    const conn = await poolFor(rt, 'legacy').getConnection()
    try {
      await insertJournalEntry(conn, config.legacy.database, { orderId: id, op: 'update', secondaries: ['user', 'merchant'], userId: '2003', merchantId: '603' })
    } finally {
      conn.release()
    }
    const d = await drainJournal(rt)
    expect(d.replayed).toBeGreaterThanOrEqual(1)
    let rows = await outboxRows(id)
    expect(rows.map((r) => [r.primary, Number(r.version)])).toEqual([['legacy', 1], ['legacy', 2]])

    await stage.set('write-shards')
    await store.update(id, { status: 'accepted' })
    await store.flush()
    rows = await outboxRows(id)
    const userDb = shardLocation(config, 'user', '2003')
    expect(rows.map((r) => [r.primary, Number(r.version)])).toEqual([['legacy', 1], ['legacy', 2], [`${userDb.host}/${userDb.database}`, 3]])
    // the flip moved the fence version: the new primary's event carries the larger one
    expect(Number(rows[2]!.stage_version)).toBeGreaterThan(Number(rows[1]!.stage_version))
    // a delete announces nothing
    await store.delete(id)
    expect(await outboxRows(id)).toHaveLength(3)
  })

  it('maps writes without an explicit event to a type', () => {
    const row = { order_id: '1', user_id: '1', merchant_id: '1', status: 'delivering', version: 4 }
    expect(eventTypeOf({ op: 'insert', row })).toBe('created')
    expect(eventTypeOf({ op: 'update', row })).toBe('delivering')
    expect(eventTypeOf({ op: 'update', row: { ...row, status: 'weird' } })).toBeUndefined()
    expect(eventTypeOf({ op: 'delete', row })).toBeUndefined()
    expect(eventTypeOf({ op: 'update', row, event: { type: 'cancelled' } })).toBe('cancelled')
  })
})
