import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { provision } from '../../src/provision/index.js'
import { runBackfill, readBackfillStatus } from '../../src/backfill/index.js'
import { runVerify, readLastVerify, recordVerifyRun } from '../../src/verify/index.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { openFencesAt } from '../../src/cutover/fence.js'
import type { StageState } from '../../src/cutover/stages.js'
import { encodeId } from '../../src/idgen/layout.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { qualified } from '../../src/runtime/mysql.js'
import { generateOrders, makeOrder, ORDER_COLUMNS, seededRandom } from '../../fixtures/generate-orders.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'

const prefix = testPrefix('backfillverify')
const config = testFleetConfig({ prefix })
let rt: Runtime
const ROWS = 3000

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await generateOrders(rt.legacy(), { database: config.legacy.database, table: config.legacy.table, rows: ROWS, seed: 7 })
  await provision(rt)
  await openFencesAt(rt, 1)
})
afterAll(async () => {
  await rt?.close()
  await dropPrefixedDatabases(prefix)
})

const state: StageState = { stage: 'dual-write', version: 1, readPercent: 0, changedAt: new Date().toISOString() }

function table(dim: 'user' | 'merchant', key: string) {
  const p = config.dimensions[dim].shards[shardOfKey(key)]!
  return { pool: rt.host(p.host), name: qualified(p.database, p.table), shard: p.shard }
}

describe('backfill under live dual writes, then verify', () => {
  it('copies every row while a writer inserts, updates and deletes, and verify is clean', async () => {
    const store = new DualWriteStore({ runtime: rt, stage: { current: () => state, ready: true } })
    const rnd = seededRandom(99)
    let stop = false
    let writes = 0
    const touched = new Set<string>()
    const writer = (async () => {
      let seq = 0
      while (!stop) {
        const r = rnd()
        if (r < 0.4) {
          const user = String(1 + Math.floor(rnd() * 500))
          const vals = makeOrder(1, rnd, 500, 20, Date.UTC(2024, 0, 1))
          const row = Object.fromEntries(ORDER_COLUMNS.map((c, i) => [c, vals[i]!])) as Record<string, string | number | null>
          row.order_id = encodeId({ time: 10_000_000 + seq, worker: 1, sequence: seq++ % 128, shard: shardOfKey(user) })
          row.user_id = user
          await store.insert(row)
        } else {
          const id = String(1 + Math.floor(rnd() * ROWS))
          if (touched.has(id)) continue
          if (r < 0.9) await store.update(id, { status: 'cancelled', note: `changed ${writes}` })
          else {
            await store.delete(id)
            touched.add(id)
          }
        }
        writes++
      }
    })()
    const progress: number[] = []
    const result = await runBackfill(rt, { chunkSize: 200, onProgress: (p) => progress.push(p.rowsDone) })
    stop = true
    await writer
    await store.flush()
    expect(result.completed).toBe(true)
    expect(writes).toBeGreaterThan(20)
    expect(progress.length).toBeGreaterThan(5)
    expect((await readBackfillStatus(rt)).state).toBe('complete')

    const v = await runVerify(rt, { chunkSize: 500, roundDelayMs: 50 })
    expect(v.differences).toEqual([])
    expect(v.clean).toBe(true)
    expect(v.rowsCompared.legacy).toBeGreaterThan(ROWS - 200)
    expect(v.rowsCompared.user).toBe(v.rowsCompared.legacy)
    expect(v.rowsCompared.merchant).toBe(v.rowsCompared.legacy)
    // every legacy id got its lookup row
    const [[lk]] = await rt.control().query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(config.control.database, 'order_lookup')}`)
    expect(Number(lk!.n)).toBeGreaterThanOrEqual(ROWS - touched.size)

    await recordVerifyRun(rt, { dimension: 'all', since: null, startedAt: v.startedAt, clean: v.clean, differences: 0, rowsCompared: v.rowsCompared.legacy, summary: v.byPair })
    expect(await readLastVerify(rt)).toMatchObject({ clean: true, differences: 0, dimension: 'all' })
  })

  it('a second backfill resumes from the checkpoint and copies nothing new; --restart copies again without duplicates', async () => {
    const again = await runBackfill(rt)
    expect(again.rowsCopied).toBe(0)
    const restarted = await runBackfill(rt, { restart: true, chunkSize: 1000 })
    expect(restarted.rowsCopied).toBe(restarted.rowsTotal)
    const v = await runVerify(rt, { roundDelayMs: 10 })
    expect(v.clean).toBe(true)
  })

  it('finds each injected fault exactly, by key and kind', async () => {
    const [rows] = await rt.legacy().query<RowDataPacket[]>(`SELECT order_id, user_id, merchant_id FROM ${qualified(config.legacy.database, config.legacy.table)} ORDER BY order_id LIMIT 10`)
    const k = rows.map((r) => ({ id: String(r.order_id), user: String(r.user_id), merchant: String(r.merchant_id) }))
    const u = (i: number) => table('user', k[i]!.user)
    const m = (i: number) => table('merchant', k[i]!.merchant)
    // 0: deleted from the user dimension
    await u(0).pool.query(`DELETE FROM ${u(0).name} WHERE order_id = ?`, [k[0]!.id])
    // 1: one column changed in the merchant dimension
    await m(1).pool.query(`UPDATE ${m(1).name} SET total_cents = total_cents + 1 WHERE order_id = ?`, [k[1]!.id])
    // 2: a value set to NULL in the user dimension
    await u(2).pool.query(`UPDATE ${u(2).name} SET note = NULL, address = NULL WHERE order_id = ?`, [k[2]!.id])
    // 3: a value moved into the neighbouring column, leaving a NULL behind (what CONCAT_WS misses)
    await u(3).pool.query(`UPDATE ${u(3).name} SET address = 'P', phone = NULL WHERE order_id = ?`, [k[3]!.id])
    await rt.legacy().query(`UPDATE ${qualified(config.legacy.database, config.legacy.table)} SET address = NULL, phone = 'P' WHERE order_id = ?`, [k[3]!.id])
    await m(3).pool.query(`UPDATE ${m(3).name} SET address = NULL, phone = 'P' WHERE order_id = ?`, [k[3]!.id])
    await u(3).pool.query(`UPDATE ${u(3).name} SET address = 'P', phone = NULL WHERE order_id = ?`, [k[3]!.id])
    // 4 and 5: amounts of two orders swapped in the user dimension
    const [[a]] = await u(4).pool.query<RowDataPacket[]>(`SELECT total_cents AS t FROM ${u(4).name} WHERE order_id = ?`, [k[4]!.id])
    const [[b]] = await u(5).pool.query<RowDataPacket[]>(`SELECT total_cents AS t FROM ${u(5).name} WHERE order_id = ?`, [k[5]!.id])
    await u(4).pool.query(`UPDATE ${u(4).name} SET total_cents = ? WHERE order_id = ?`, [b!.t, k[4]!.id])
    await u(5).pool.query(`UPDATE ${u(5).name} SET total_cents = ? WHERE order_id = ?`, [a!.t, k[5]!.id])
    // 6: moved to the wrong shard of the user dimension
    const wrong = config.dimensions.user.shards[(u(6).shard + 1) % 120]!
    await rt.host(wrong.host).query(`INSERT INTO ${qualified(wrong.database, wrong.table)} SELECT * FROM ${u(6).name} WHERE order_id = ?`, [k[6]!.id])
    await u(6).pool.query(`DELETE FROM ${u(6).name} WHERE order_id = ?`, [k[6]!.id])
    // an extra row in the merchant dimension that legacy does not have
    await m(7).pool.query(`INSERT INTO ${m(7).name} SELECT * FROM ${m(7).name} WHERE order_id = ?`.replace('SELECT *', `SELECT 999999999 AS order_id, user_id, merchant_id, status, total_cents, currency, items, address, phone, note, version, created_at, updated_at`), [k[7]!.id])

    const v = await runVerify(rt, { rounds: 1, roundDelayMs: 10 })
    expect(v.clean).toBe(false)
    const got = v.differences.filter((d) => d.pair !== 'user-merchant').map((d) => `${d.pair}:${d.kind}:${d.key}`).sort()
    expect(got).toEqual(
      [
        `legacy-user:missing:${k[0]!.id}`,
        `legacy-merchant:different:${k[1]!.id}`,
        `legacy-user:different:${k[2]!.id}`,
        `legacy-user:different:${k[3]!.id}`,
        `legacy-user:different:${k[4]!.id}`,
        `legacy-user:different:${k[5]!.id}`,
        `legacy-user:misplaced:${k[6]!.id}`,
        `legacy-merchant:extra:999999999`,
      ].sort(),
    )
  })
})
