/**
 * Regression, issue 15 defect 3: `backfill` was allowed at write-shards and
 * shards (the guard checked only the lower bound), and its INSERT IGNORE of
 * stale legacy rows brought back orders deleted since. Now:
 * - every stage is checked: refused at legacy (dual writes off) and from
 *   write-shards on (the user shards are the primary there); allowed at
 *   dual-write, shadow-read and read-shards;
 * - a running backfill re-checks the stage before each chunk and stops at
 *   its checkpoint when a switch overtook it;
 * - a chunk never brings back a row a tombstone keeps out (an order deleted,
 *   or moved away, after the chunk was read).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { assertBackfillAllowed } from '../../src/cutover/guards.js'
import { runBackfill } from '../../src/backfill/index.js'
import { shardLocation } from '../../src/dualwrite/placement.js'
import { DEAD, TOMBSTONE_TABLE } from '../../src/dualwrite/tombstones.js'
import { qualified } from '../../src/runtime/mysql.js'
import { setupFleet, walkTo, type Fleet } from './cutover-support.js'
import { orderRow as baseRow } from './dualwrite-support.js'
import { formatDateTime } from '../../src/dualwrite/row-sql.js'

const orderRow = (id: string, u: string, m: string) => baseRow(id, u, m, { created_at: formatDateTime(Date.now()), updated_at: formatDateTime(Date.now()) })

let fleet: Fleet

beforeAll(async () => {
  fleet = await setupFleet('bfguard')
})

afterAll(async () => {
  await fleet?.cleanup()
})

const LEGACY = () => qualified(fleet.config.legacy.database, fleet.config.legacy.table)

async function seedLegacy(ids: readonly [string, string, string][]): Promise<void> {
  for (const [id, u, m] of ids) {
    const r = orderRow(id, u, m)
    const cols = Object.keys(r)
    await fleet.rt.legacy().query(`INSERT INTO ${LEGACY()} (${cols.join(',')}, version) VALUES (${cols.map(() => '?').join(',')}, 1)`, [...cols.map((c) => r[c]), ])
  }
}

async function inShard(side: 'user' | 'merchant', id: string, key: string): Promise<boolean> {
  const l = shardLocation(fleet.config, side, key)
  const [rows] = await fleet.rt.host(l.host).query<RowDataPacket[]>(`SELECT 1 FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [id])
  return rows.length > 0
}

describe('defect 3: backfill and the stages', () => {
  it('is refused at legacy, allowed at dual-write, shadow-read and read-shards, refused at write-shards and shards', async () => {
    const verdicts: Record<string, string> = {}
    const check = async (label: string) => {
      verdicts[label] = await assertBackfillAllowed(fleet.rt).then(
        () => 'allowed',
        (err: { code?: string }) => err.code ?? 'error',
      )
    }
    await check('legacy')
    for (const [stage, pct] of [['dual-write', 0], ['shadow-read', 0], ['read-shards', 50], ['read-shards', 100], ['write-shards', 100], ['shards', 100]] as const) {
      await walkTo(fleet.rt, stage, pct)
      await check(stage === 'read-shards' ? `read-shards ${pct}%` : stage)
    }
    expect(verdicts).toEqual({
      legacy: 'PRECONDITION_FAILED',
      'dual-write': 'allowed',
      'shadow-read': 'allowed',
      'read-shards 50%': 'allowed',
      'read-shards 100%': 'allowed',
      'write-shards': 'PRECONDITION_FAILED',
      shards: 'PRECONDITION_FAILED',
    })
    // The library call refuses too (before its first chunk), and copies nothing.
    await seedLegacy([['900001', '91001', '9101']])
    await expect(runBackfill(fleet.rt, { restart: true })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED', message: expect.stringContaining('the stage is shards') })
    expect(await inShard('user', '900001', '91001')).toBe(false)
  })

  it('a chunk never brings back an order a tombstone keeps out', async () => {
    // A fleet at read-shards (backfill allowed) where legacy still holds an order that the user
    // and merchant copies have a delete's tombstone for (the delete reached them, not yet legacy).
    const f = await setupFleet('bfguard2')
    try {
      await walkTo(f.rt, 'read-shards', 100)
      const id = '900002'
      const r = orderRow(id, '92001', '9201')
      const cols = Object.keys(r)
      await f.rt.legacy().query(`INSERT INTO ${qualified(f.config.legacy.database, f.config.legacy.table)} (${cols.join(',')}, version) VALUES (${cols.map(() => '?').join(',')}, 1)`, cols.map((c) => r[c]))
      for (const side of ['user', 'merchant'] as const) {
        const l = shardLocation(f.config, side, side === 'user' ? '92001' : '9201')
        await f.rt.host(l.host).query(`INSERT INTO ${qualified(l.database, TOMBSTONE_TABLE)} (order_id, tbl, version) VALUES (?, ?, ?)`, [id, l.table, DEAD])
      }
      const other = '900003'
      const r2 = orderRow(other, '92002', '9202')
      await f.rt.legacy().query(`INSERT INTO ${qualified(f.config.legacy.database, f.config.legacy.table)} (${cols.join(',')}, version) VALUES (${cols.map(() => '?').join(',')}, 1)`, cols.map((c) => r2[c]))
      const done = await runBackfill(f.rt, { restart: true })
      expect(done.completed).toBe(true)
      const at = async (side: 'user' | 'merchant', oid: string, key: string) => {
        const l = shardLocation(f.config, side, key)
        const [rows] = await f.rt.host(l.host).query<RowDataPacket[]>(`SELECT 1 FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [oid])
        return rows.length > 0
      }
      expect(await at('user', id, '92001')).toBe(false)
      expect(await at('merchant', id, '9201')).toBe(false)
      // The chunk's other rows are copied as usual.
      expect(await at('user', other, '92002')).toBe(true)
      expect(await at('merchant', other, '9202')).toBe(true)
    } finally {
      await f.cleanup()
    }
  })
})
