/**
 * Issue 17 point 7: the outbox hook takes the order, user and merchant key
 * columns from the config (`legacy.primaryKey`, `userColumn`,
 * `merchantColumn`), as the dual-write store does. On a legacy table whose
 * key is `purchase_no` (keys `buyer_id` / `seller_id`), a write with events
 * on commits and its event names the right ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified, quoteIdent } from '../../src/runtime/mysql.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { legacyLocation } from '../../src/dualwrite/placement.js'
import { createOutboxHook, OUTBOX_TABLE } from '../../src/events/outbox.js'
import { adminPool, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { FixedStage, hostPools, newOrderId } from './dualwrite-support.js'

const prefix = testPrefix('evhookkeys')
const config = testFleetConfig({ prefix, legacyTable: 'purchases', primaryKey: 'purchase_no', userColumn: 'buyer_id', merchantColumn: 'seller_id' })
const pools = hostPools(config)
let rt: Runtime
let store: DualWriteStore

beforeAll(async () => {
  const admin = adminPool(config.legacy.url)
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(config.legacy.database)}`)
    await admin.query(`CREATE TABLE ${qualified(config.legacy.database, 'purchases')} (
      purchase_no BIGINT UNSIGNED NOT NULL,
      buyer_id BIGINT UNSIGNED NOT NULL,
      seller_id BIGINT UNSIGNED NOT NULL,
      status VARCHAR(16) NOT NULL,
      total_cents INT NOT NULL DEFAULT 0,
      version INT UNSIGNED NOT NULL DEFAULT 1,
      PRIMARY KEY (purchase_no),
      KEY idx_buyer (buyer_id),
      KEY idx_seller (seller_id)
    ) ENGINE=InnoDB`)
  } finally {
    await admin.end()
  }
  rt = openRuntime(config)
  await provision(rt)
  const stage = new FixedStage(config, pools.get, rt)
  await stage.set('legacy')
  store = new DualWriteStore({ runtime: rt, stage, onPrimaryWrite: createOutboxHook({ config: rt.config }) })
}, 60_000)
afterAll(async () => {
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('outbox hook key columns (issue 17.7)', () => {
  it('a write on a table keyed purchase_no / buyer_id / seller_id commits with its event', async () => {
    const id = newOrderId('4242')
    await store.insert({ purchase_no: id, buyer_id: '4242', seller_id: '77', status: 'created', total_cents: 5, version: 1 }, { event: { type: 'created' } })
    await store.update(id, { status: 'paid' }, { event: { type: 'paid' } })
    const l = legacyLocation(config)
    const [rows] = await pools.get('legacy').query<RowDataPacket[]>(`SELECT order_id, user_id, merchant_id, type, version FROM ${qualified(l.database, OUTBOX_TABLE)} ORDER BY id`)
    expect(rows.map((r) => [String(r.order_id), String(r.user_id), String(r.merchant_id), r.type, Number(r.version)])).toEqual([
      [id, '4242', '77', 'created', 1],
      [id, '4242', '77', 'paid', 2],
    ])
  })
})
