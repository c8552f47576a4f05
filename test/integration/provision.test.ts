import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { CONTROL_TABLES, PRIMARY_TABLES, ORDER_DB_TABLES } from '../../src/control/tables.js'
import { qualified } from '../../src/runtime/mysql.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'

const prefix = testPrefix('provision')
const config = testFleetConfig({ prefix })
let rt: Runtime

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
})
afterAll(async () => {
  await rt?.close()
  await dropPrefixedDatabases(prefix)
})

describe('provision', () => {
  it('dry run creates nothing and lists what it would create', async () => {
    const r = await provision(rt, { dryRun: true })
    expect(r.created.filter((c) => c.kind === 'shard-table')).toHaveLength(240)
    const pool = adminPool()
    try {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix}user%`])
      expect(Number(rows[0]!.n)).toBe(0)
    } finally {
      await pool.end()
    }
  })

  it('creates 240 shard tables once, then reports nothing to do', async () => {
    const first = await provision(rt)
    expect(first.conflicts).toEqual([])
    expect(first.created.filter((c) => c.kind === 'shard-table')).toHaveLength(240)
    expect(first.created.filter((c) => c.kind === 'database').length).toBeGreaterThanOrEqual(5) // 4 shard dbs + control
    expect(first.created.filter((c) => c.kind === 'control-table')).toHaveLength(CONTROL_TABLES.length)
    // primary tables go to legacy + each user-dimension database (2 here)
    expect(first.created.filter((c) => c.kind === 'primary-table')).toHaveLength(PRIMARY_TABLES.length * 3)
    // tombstones go to every database holding order copies: legacy + the 4 shard databases
    expect(first.created.filter((c) => c.kind === 'order-db-table')).toHaveLength(ORDER_DB_TABLES.length * 5)

    const second = await provision(rt)
    expect(second.created).toEqual([])
    expect(second.conflicts).toEqual([])
    expect(second.existing['shard-table']).toBe(240)

    const pool = adminPool()
    try {
      for (const dim of ['user', 'merchant'] as const) {
        for (const shard of [0, 59, 60, 119]) {
          const p = config.dimensions[dim].shards[shard]!
          const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [p.database, p.table])
          expect(Number(rows[0]!.n)).toBe(1)
        }
      }
      // the legacy fixture already has an index led by merchant_id, so none is added
      const m = config.dimensions.merchant.shards[5]!
      const [idx] = await pool.query<RowDataPacket[]>('SELECT DISTINCT INDEX_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [m.database, m.table])
      expect(idx.map((r) => r.n).sort()).toEqual(['PRIMARY', 'idx_merchant', 'idx_user'])
    } finally {
      await pool.end()
    }
  })

  it('reports a shard table with another definition and leaves it alone', async () => {
    const p = config.dimensions.user.shards[42]!
    const pool = adminPool()
    try {
      await pool.query(`ALTER TABLE ${qualified(p.database, p.table)} MODIFY note VARCHAR(100) NULL`)
      const r = await provision(rt)
      expect(r.conflicts).toHaveLength(1)
      expect(r.conflicts[0]).toMatchObject({ database: p.database, table: p.table })
      expect(r.conflicts[0]!.differences.join()).toMatch(/column note is varchar\(100\)/)
      const [cols] = await pool.query<RowDataPacket[]>('SELECT COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [p.database, p.table, 'note'])
      expect(cols[0]!.t).toBe('varchar(100)')
    } finally {
      await pool.end()
    }
  })
})
