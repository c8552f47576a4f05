/**
 * Verify's chunk checksums catch each fault on its own (so the chunk level,
 * not only the row level, must see it), name exactly that key, and repair
 * puts it right from the stage's source of truth. Also `--since`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { provision } from '../../src/provision/index.js'
import { runBackfill } from '../../src/backfill/index.js'
import { runVerify, runVerifySince, runRepair, parseReport, rowTextSql, readColumnInfo, type Difference } from '../../src/verify/index.js'
import { cutoverKeys, publishStage } from '../../src/cutover/switch-store.js'
import { primaryDatabases } from '../../src/dualwrite/placement.js'
import { poolFor } from '../../src/dualwrite/connections.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { qualified } from '../../src/runtime/mysql.js'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { deleteRedisKeys } from './cutover-support.js'

const prefix = testPrefix('verifyrepair')
const config = testFleetConfig({ prefix })
const ROWS = 20_000
let rt: Runtime
const LEGACY = qualified(config.legacy.database, config.legacy.table)

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await generateOrders(rt.legacy(), { database: config.legacy.database, table: config.legacy.table, rows: ROWS, seed: 3 })
  await provision(rt)
  const r = await runBackfill(rt, { chunkSize: 5000 })
  expect(r.completed).toBe(true)
})
afterAll(async () => {
  await rt?.close()
  await deleteRedisKeys(config.redis.keyPrefix)
  await dropPrefixedDatabases(prefix)
})

async function keysOf(id: number) {
  const [[r]] = await rt.legacy().query<RowDataPacket[]>(`SELECT order_id, user_id, merchant_id FROM ${LEGACY} WHERE order_id = ?`, [id])
  return { id: String(r!.order_id), user: String(r!.user_id), merchant: String(r!.merchant_id) }
}
function table(dim: 'user' | 'merchant', key: string, offset = 0) {
  const p = config.dimensions[dim].shards[(shardOfKey(key) + offset) % 120]!
  return { pool: rt.host(p.host), name: qualified(p.database, p.table), shard: p.shard }
}
/** Verify with chunks of 2,000 legacy rows: a fault must show in its chunk's sums to be found at all. */
/** Opens every primary's fence at `version`, or (null) removes the fence rows. */
async function setFences(version: number | null): Promise<void> {
  for (const p of primaryDatabases(config)) {
    const t = qualified(p.database, 'shardkit_fence')
    if (version === null) await poolFor(rt, p.host).query(`DELETE FROM ${t}`)
    else await poolFor(rt, p.host).query(`INSERT INTO ${t} (id, stage_version, state) VALUES (1, ?, 'open') ON DUPLICATE KEY UPDATE stage_version = VALUES(stage_version), state = 'open'`, [version])
  }
}

const verify = () => runVerify(rt, { chunkSize: 2000, rounds: 1, roundDelayMs: 10 })
const keyset = (ds: readonly Difference[]) => ds.filter((d) => d.pair !== 'user-merchant').map((d) => `${d.pair}:${d.kind}:${d.key}`).sort()

async function repairAndCheck(diffs: readonly Difference[]): Promise<void> {
  const r = await runRepair(rt, diffs, { execute: true })
  expect(r.remaining).toEqual([])
  expect(r.clean).toBe(true)
  const v = await verify()
  expect(v.differences).toEqual([])
  expect(v.clean).toBe(true)
}

describe('each fault alone is found in its chunk, by key and kind, and repaired', () => {
  it('starts clean, with every chunk proven by its sums', async () => {
    const v = await verify()
    expect(v.clean).toBe(true)
    expect(v.chunks).toBe(Math.ceil(ROWS / 2000))
    expect(v.chunksNarrowed).toBe(0)
    expect(v.rowsCompared).toEqual({ legacy: ROWS, user: ROWS, merchant: ROWS })
  })

  const faults: Array<[string, () => Promise<string[]>]> = [
    ['a row deleted', async () => {
      const k = await keysOf(1234)
      const t = table('user', k.user)
      await t.pool.query(`DELETE FROM ${t.name} WHERE order_id = ?`, [k.id])
      return [`legacy-user:missing:${k.id}`]
    }],
    ['an extra row', async () => {
      const k = await keysOf(15_000)
      const t = table('merchant', k.merchant)
      await t.pool.query(`INSERT INTO ${t.name} SELECT 15000000 + order_id, user_id, merchant_id, status, total_cents, currency, items, address, phone, note, version, created_at, updated_at FROM ${t.name} WHERE order_id = ?`, [k.id])
      return [`legacy-merchant:extra:${15_000_000 + 15_000}`]
    }],
    ['one column changed', async () => {
      const k = await keysOf(777)
      const t = table('merchant', k.merchant)
      await t.pool.query(`UPDATE ${t.name} SET status = CONCAT(status, 'x') WHERE order_id = ?`, [k.id])
      return [`legacy-merchant:different:${k.id}`]
    }],
    ['a value set to NULL', async () => {
      const [[r]] = await rt.legacy().query<RowDataPacket[]>(`SELECT order_id FROM ${LEGACY} WHERE address IS NOT NULL AND order_id > 9000 ORDER BY order_id LIMIT 1`)
      const k = await keysOf(Number(r!.order_id))
      const t = table('user', k.user)
      await t.pool.query(`UPDATE ${t.name} SET address = NULL WHERE order_id = ?`, [k.id])
      return [`legacy-user:different:${k.id}`]
    }],
    ['a value moved into the neighbouring column, leaving a NULL behind', async () => {
      const k = await keysOf(4242)
      await rt.legacy().query(`UPDATE ${LEGACY} SET address = 'Q', phone = NULL WHERE order_id = ?`, [k.id])
      for (const dim of ['user', 'merchant'] as const) {
        const t = table(dim, dim === 'user' ? k.user : k.merchant)
        await t.pool.query(`UPDATE ${t.name} SET address = 'Q', phone = NULL WHERE order_id = ?`, [k.id])
      }
      const t = table('user', k.user)
      await t.pool.query(`UPDATE ${t.name} SET address = NULL, phone = 'Q' WHERE order_id = ?`, [k.id])
      return [`legacy-user:different:${k.id}`]
    }],
    ['a row in the wrong shard', async () => {
      const k = await keysOf(18_888)
      const right = table('user', k.user)
      const wrong = table('user', k.user, 1)
      await wrong.pool.query(`INSERT INTO ${wrong.name} SELECT * FROM ${right.name} WHERE order_id = ?`, [k.id])
      await right.pool.query(`DELETE FROM ${right.name} WHERE order_id = ?`, [k.id])
      return [`legacy-user:misplaced:${k.id}`]
    }],
    ['a row copied into a second shard', async () => {
      const k = await keysOf(3_333)
      const right = table('merchant', k.merchant)
      const wrong = table('merchant', k.merchant, 7)
      await wrong.pool.query(`INSERT INTO ${wrong.name} SELECT * FROM ${right.name} WHERE order_id = ?`, [k.id])
      return [`legacy-merchant:misplaced:${k.id}`]
    }],
  ]
  for (const [name, inject] of faults) {
    it(name, async () => {
      const want = await inject()
      const v = await verify()
      expect(v.clean).toBe(false)
      expect(v.chunksNarrowed).toBe(1)
      expect(keyset(v.differences)).toEqual(want)
      await repairAndCheck(v.differences)
    })
  }

  it('the amounts of two orders swapped, where an XOR of plain CRC32s cancels out', async () => {
    // Two orders of the same shape in the same user shard: every field before
    // and after the amount has the same length, so a plain CRC32 changes by
    // the same pattern in both rows and the XOR of the chunk is unchanged.
    const cols = await readColumnInfo(rt.legacy(), config.legacy.database, config.legacy.table)
    const base = { user_id: '120042', merchant_id: '3', status: 'paid', currency: 'CNY', items: '[{"sku":"A1","qty":1}]', address: 'Road 1', phone: '555', note: null, version: 1, created_at: '2024-01-01 00:00:00.000', updated_at: '2024-01-01 00:00:00.000' }
    const a = { order_id: '19999001', total_cents: 1500, ...base }
    const b = { order_id: '19999121', total_cents: 2600, ...base }
    for (const row of [a, b]) {
      const names = Object.keys(row)
      const sql = (t: string) => `INSERT INTO ${t} (${names.join(',')}) VALUES (${names.map(() => '?').join(',')})`
      await rt.legacy().query(sql(LEGACY), Object.values(row))
      for (const dim of ['user', 'merchant'] as const) {
        const t = table(dim, dim === 'user' ? row.user_id : row.merchant_id)
        await t.pool.query(sql(t.name), Object.values(row))
      }
    }
    const u = table('user', base.user_id)
    const crcXor = async () => {
      const [[r]] = await u.pool.query<RowDataPacket[]>(`SELECT BIT_XOR(CRC32(${rowTextSql(cols)})) AS x FROM ${u.name} WHERE order_id IN (?, ?)`, [a.order_id, b.order_id])
      return String(r!.x)
    }
    expect((await verify()).clean).toBe(true)
    const before = await crcXor()
    await u.pool.query(`UPDATE ${u.name} SET total_cents = ? WHERE order_id = ?`, [b.total_cents, a.order_id])
    await u.pool.query(`UPDATE ${u.name} SET total_cents = ? WHERE order_id = ?`, [a.total_cents, b.order_id])
    // The trap is real: the plain CRC32 XOR did not change.
    expect(await crcXor()).toBe(before)
    const v = await verify()
    expect(keyset(v.differences)).toEqual([`legacy-user:different:${a.order_id}`, `legacy-user:different:${b.order_id}`])
    await repairAndCheck(v.differences)
  })
})

describe('repair after writes move: the user dimension is the source of truth', () => {
  it('at write-shards a legacy row that differs is overwritten from the user shard', async () => {
    // The stage as a real switch leaves it: in Redis and in every primary's fence (repair passes the fence).
    await publishStage(rt, { stage: 'write-shards', version: 9, readPercent: 100, changedAt: new Date().toISOString() })
    await setFences(9)
    try {
      const k = await keysOf(555)
      await rt.legacy().query(`UPDATE ${LEGACY} SET total_cents = 1 WHERE order_id = ?`, [k.id])
      const v = await verify()
      expect(keyset(v.differences)).toEqual([`legacy-merchant:different:${k.id}`, `legacy-user:different:${k.id}`])
      const plan = await runRepair(rt, v.differences)
      expect(plan).toMatchObject({ executed: false, sourceOfTruth: 'user', applied: 0 })
      await repairAndCheck(v.differences)
      const [[r]] = await rt.legacy().query<RowDataPacket[]>(`SELECT total_cents FROM ${LEGACY} WHERE order_id = ?`, [k.id])
      expect(Number(r!.total_cents)).not.toBe(1)
    } finally {
      // Back to a fleet no move ever touched (stage legacy v0, no fence rows), as the other tests expect.
      await rt.redis().del(cutoverKeys(config.redis.keyPrefix).stage)
      await setFences(null)
    }
  })
})

describe('verify --since', () => {
  it('finds a row changed after the time and not one changed before', async () => {
    const old = await keysOf(100)
    const recent = await keysOf(200)
    const t1 = table('user', old.user)
    await t1.pool.query(`UPDATE ${t1.name} SET note = 'old change', updated_at = '2020-01-01 00:00:00' WHERE order_id = ?`, [old.id])
    const since = new Date(Date.now() - 60_000)
    const t2 = table('user', recent.user)
    await t2.pool.query(`UPDATE ${t2.name} SET note = 'new change', updated_at = UTC_TIMESTAMP(3) WHERE order_id = ?`, [recent.id])
    const v = await runVerifySince(rt, since, { rounds: 1, roundDelayMs: 10 })
    expect(keyset(v.differences)).toEqual([`legacy-user:different:${recent.id}`])
    expect(v.rowsCompared.user).toBeGreaterThanOrEqual(1)
    // The full verify sees both.
    const full = await verify()
    expect(keyset(full.differences)).toEqual([`legacy-user:different:${old.id}`, `legacy-user:different:${recent.id}`].sort())
    await repairAndCheck(full.differences)
  })
})

describe('differences the dual-write journal still owes', () => {
  it('waits for the journal entry to clear, then compares again; reports the key as journaled when it does not clear', async () => {
    const k = await keysOf(9_999)
    const t = table('user', k.user)
    const journal = qualified(config.legacy.database, 'shardkit_journal')
    const [[orig]] = await t.pool.query<RowDataPacket[]>(`SELECT note FROM ${t.name} WHERE order_id = ?`, [k.id])
    await t.pool.query(`UPDATE ${t.name} SET note = 'in flight' WHERE order_id = ?`, [k.id])
    await rt.legacy().query(`INSERT INTO ${journal} (order_id, op, secondaries, user_id, merchant_id) VALUES (?, 'update', 'user', ?, ?)`, [k.id, k.user, k.merchant])
    // The "drainer": puts the copy right and clears the entry a second later.
    const drained = new Promise<void>((resolve) =>
      setTimeout(async () => {
        await t.pool.query(`UPDATE ${t.name} SET note = ? WHERE order_id = ?`, [orig!.note, k.id])
        await rt.legacy().query(`DELETE FROM ${journal} WHERE order_id = ?`, [k.id])
        resolve()
      }, 1_000),
    )
    const v = await runVerify(rt, { chunkSize: 2000, rounds: 1, roundDelayMs: 10, journalWaitMs: 10_000 })
    await drained
    expect(v.differences).toEqual([])
    expect(v.clean).toBe(true)

    await t.pool.query(`UPDATE ${t.name} SET note = 'stuck' WHERE order_id = ?`, [k.id])
    await rt.legacy().query(`INSERT INTO ${journal} (order_id, op, secondaries, user_id, merchant_id) VALUES (?, 'update', 'user', ?, ?)`, [k.id, k.user, k.merchant])
    const stuck = await runVerify(rt, { chunkSize: 2000, rounds: 1, roundDelayMs: 10, journalWaitMs: 500 })
    expect(keyset(stuck.differences)).toEqual([`legacy-user:different:${k.id}`])
    expect(stuck.journaled).toEqual(expect.arrayContaining([k.id]))
    await rt.legacy().query(`DELETE FROM ${journal} WHERE order_id = ?`, [k.id])
    await repairAndCheck(stuck.differences)
  })
})

describe('parseReport', () => {
  it('names the entry and field that is wrong', () => {
    expect(() => parseReport('nope', 'r.json')).toThrow(/r.json is not JSON/)
    expect(() => parseReport('{}', 'r.json')).toThrow(/no "differences" list/)
    expect(() => parseReport(JSON.stringify({ differences: [{ pair: 'legacy-user', kind: 'different', key: '1' }, { pair: 'x', kind: 'different', key: '2' }] }), 'r.json')).toThrow(/differences\[1\]\.pair/)
    expect(() => parseReport(JSON.stringify({ differences: [{ pair: 'legacy-user', kind: 'missing', key: '1', shard: 120 }] }), 'r.json')).toThrow(/differences\[0\]\.shard/)
    expect(parseReport(JSON.stringify({ differences: [{ pair: 'legacy-user', kind: 'missing', key: '1', shard: 3 }], overflow: 2 }), 'r.json')).toEqual({ differences: [{ pair: 'legacy-user', kind: 'missing', key: '1', shard: 3 }], overflow: 2 })
  })
})
