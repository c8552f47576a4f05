/**
 * Regression (order-service-load under load, 2026-11-25): at read-shards a
 * status change got 404 because the order's user copy had timed out and was
 * waiting in the journal. While legacy is the write primary, a miss in the
 * shard is read from legacy; once the shards are the primary, it is not.
 *
 * Regression (demo under a busy loop, 2026-12-01): at read-shards a status
 * change got 409 VERSION_CONFLICT "at version 2, not 3": the order's user
 * copy of its last update had timed out, so its shard row was one version
 * behind, and the read returned that row. While the journal owes the order a
 * copy, the read comes from legacy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { legacyLocation, shardLocation } from '../../src/dualwrite/placement.js'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { FixedStage, hostPools, provisionedFleet, newOrderId, orderRow } from './dualwrite-support.js'

let fleet: Awaited<ReturnType<typeof provisionedFleet>>
let config: ShardkitConfig
let pools: ReturnType<typeof hostPools>
let rt: Runtime
let stage: FixedStage
let store: DualWriteStore

beforeAll(async () => {
  fleet = await provisionedFleet('dwfallback')
  ;({ config, rt, pools } = fleet)
  stage = new FixedStage(config, pools.get)
  store = new DualWriteStore({ runtime: rt, stage, random: () => 0 })
})
afterAll(async () => {
  await fleet?.cleanup()
})

async function dropUserCopy(orderId: string, userId: string): Promise<void> {
  const l = shardLocation(config, 'user', userId)
  await pools.get(l.host).query(`DELETE FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [orderId])
}

describe('a read that misses in a secondary shard', () => {
  it('at read-shards 100%, is answered from legacy (the write primary)', async () => {
    await stage.set('dual-write')
    const id = newOrderId('2001')
    await store.insert(orderRow(id, '2001', '601'))
    await store.flush()
    await stage.set('read-shards', 100)
    await dropUserCopy(id, '2001')
    expect((await store.get(id))?.order_id).toBe(id)
  })

  it('at read-shards 100%, an order whose last copy timed out is read at its legacy version, not the stale shard row', async () => {
    await stage.set('dual-write')
    const id = newOrderId('2003')
    await store.insert(orderRow(id, '2003', '603'))
    await store.flush()
    await stage.set('read-shards', 100)
    const before = await store.get(id)
    // A session holds the user copy's row lock, so this update's user copy times out and is journaled.
    const l = shardLocation(config, 'user', '2003')
    const holder = await pools.get(l.host).getConnection()
    const quick = new DualWriteStore({ runtime: rt, stage, random: () => 0, secondaryTimeoutMs: 300 })
    try {
      await holder.query('START TRANSACTION')
      await holder.query(`SELECT order_id FROM ${qualified(l.database, l.table)} WHERE order_id = ? FOR UPDATE`, [id])
      await quick.update(id, { status: 'paid' }, { expectedVersion: Number(before!.version) })
      expect(quick.stats().secondaryFailures).toBeGreaterThan(0)
    } finally {
      await holder.query('ROLLBACK')
      holder.release()
    }
    const [shardRows] = await pools.get(l.host).query<import('mysql2/promise').RowDataPacket[]>(`SELECT version FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [id])
    expect(Number(shardRows[0]!.version)).toBe(Number(before!.version)) // the shard really is behind
    const now = await store.get(id)
    expect(Number(now!.version)).toBe(Number(before!.version) + 1)
    expect(now!.status).toBe('paid')
  })

  it('at write-shards, the user shard is the primary: a miss there is a miss', async () => {
    const id = newOrderId('2002')
    await stage.set('dual-write')
    await store.insert(orderRow(id, '2002', '602'))
    await store.flush()
    await stage.set('write-shards')
    await dropUserCopy(id, '2002')
    const l = legacyLocation(config)
    expect((await pools.get(l.host).query(`SELECT 1 FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [id]))[0]).toHaveLength(1)
    expect(await store.get(id)).toBeUndefined()
  })
})
