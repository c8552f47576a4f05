/**
 * Ids survive MySQL: written through the toolkit's mysql2 pool and read back
 * as the very same decimal strings, above 2^53 included. A pool with mysql2's
 * defaults would round them, which the last test shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise'
import { ManualClock } from '../../src/idgen/clock.js'
import { openIdGenerator } from '../../src/idgen/generator.js'
import { createMysqlPool, qualified, quoteIdent } from '../../src/runtime/mysql.js'
import { dropPrefixedDatabases, testMysqlUrl, testPrefix } from '../support/db.js'
import { MemoryLeaseStore } from '../support/idgen-memory-store.js'

const prefix = testPrefix('idgenrt')
const db = `${prefix}ids`
const table = qualified(db, 'ids')
let pool: Pool

beforeAll(async () => {
  pool = createMysqlPool(testMysqlUrl(), { connectionLimit: 2 })
  await pool.query(`CREATE DATABASE ${quoteIdent(db)}`)
  await pool.query(`CREATE TABLE ${table} (order_id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(32) NOT NULL) ENGINE=InnoDB`)
})
afterAll(async () => {
  await pool?.end()
  await dropPrefixedDatabases(prefix)
})

describe('ids through a mysql2 pool', () => {
  it('2^53+1, 2^63-1 and 1,000 generated ids come back as the same strings', async () => {
    const clock = new ManualClock(Date.UTC(2094, 8, 7, 15, 40))
    const gen = await openIdGenerator({ store: new MemoryLeaseStore(() => clock.monoMs()), clock, autoRenew: false, maxLeadMs: 60_000 })
    const ids = ['9007199254740993', '9223372036854775807', '9007199254740992', ...gen.nextIds('9223372036854775807', 1_000)]
    await gen.close()
    await pool.query(`INSERT INTO ${table} (order_id, note) VALUES ?`, [ids.map((id) => [id, 'x'])])
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT order_id FROM ${table} ORDER BY order_id`)
    const back = rows.map((r) => r.order_id as unknown)
    expect(back.every((v) => typeof v === 'string')).toBe(true)
    expect(new Set(back)).toEqual(new Set(ids))
    const [one] = await pool.query<RowDataPacket[]>(`SELECT order_id FROM ${table} WHERE order_id = ?`, ['9223372036854775807'])
    expect(one[0]!.order_id).toBe('9223372036854775807')
    // JSON carries them as strings, unchanged.
    expect(JSON.parse(JSON.stringify({ id: one[0]!.order_id })).id).toBe('9223372036854775807')
  })

  it('a pool with mysql2 defaults loses the digits (why createMysqlPool sets bigNumberStrings)', async () => {
    const u = new URL(testMysqlUrl())
    const plain = mysql.createPool({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username || 'root'), password: decodeURIComponent(u.password), connectionLimit: 1 })
    try {
      const [rows] = await plain.query<RowDataPacket[]>(`SELECT order_id FROM ${table} WHERE order_id = ?`, ['9007199254740993'])
      expect(typeof rows[0]!.order_id).toBe('number')
      expect(String(rows[0]!.order_id)).not.toBe('9007199254740993')
    } finally {
      await plain.end()
    }
  })
})
