import { describe, expect, it } from 'vitest'
import { assertKnownColumns, differingColumns, formatDateTime, toOrderRow, valuesOf } from '../../src/dualwrite/row-sql.js'
import { deleteBelowSql, guardedUpsertParams, guardedUpsertSql, tombstoneBeforeDeleteSql } from '../../src/dualwrite/copy-sql.js'
import { boundCopySql, copyDeadline, serverRunBoundMs } from '../../src/dualwrite/copy-bounds.js'
import { decodeCursor, encodeCursor, pageLimit } from '../../src/dualwrite/cursor.js'
import { backoffDelay } from '../../src/dualwrite/backoff.js'

const shape = { columns: ['order_id', 'user_id', 'merchant_id', 'note', 'version', 'updated_at'], primaryKey: 'order_id', userColumn: 'user_id', merchantColumn: 'merchant_id' }
const loc = { side: 'user' as const, host: 'h1', database: 'sk_user_0', table: 'orders_001' }

describe('dual-write SQL', () => {
  it('copies with a version guard, a tombstone check and a server-side deadline; version assigned last', () => {
    const sql = guardedUpsertSql(shape, loc)
    expect(sql).toMatch(/^INSERT INTO `sk_user_0`.`orders_001` \(`order_id`, `user_id`, `merchant_id`, `note`, `version`, `updated_at`\) SELECT \?, \?, \?, \?, \?, \? FROM DUAL WHERE /)
    expect(sql).toContain("WHERE UTC_TIMESTAMP(6) < ? AND NOT EXISTS (SELECT 1 FROM `sk_user_0`.`shardkit_tombstone` WHERE order_id = ? AND tbl = ? AND version > ? LOCK IN SHARE MODE) ON DUPLICATE KEY UPDATE ")
    expect(sql).toContain('`note` = IF(VALUES(`version`) >= `version`, VALUES(`note`), `note`)')
    expect(sql.endsWith('`version` = GREATEST(`version`, VALUES(`version`))')).toBe(true)
    expect(sql).not.toContain('`order_id` = IF')
    // Repair overwrites whatever the copy holds.
    const forced = guardedUpsertSql(shape, loc, { force: true })
    expect(forced).toContain('`note` = VALUES(`note`)')
    expect(forced.endsWith('`version` = VALUES(`version`)')).toBe(true)
    expect(guardedUpsertParams(['a', 'b'], '2026-01-01 00:00:00.000000', '7', loc, 3)).toEqual(['a', 'b', '2026-01-01 00:00:00.000000', '7', 'orders_001', '3'])
  })

  it('deletes a copy after its tombstone, only below the tombstone version, before the deadline', () => {
    expect(tombstoneBeforeDeleteSql(loc)).toBe(
      'INSERT INTO `sk_user_0`.`shardkit_tombstone` (order_id, tbl, version) SELECT ?, ?, CAST(? AS UNSIGNED) FROM DUAL WHERE UTC_TIMESTAMP(6) < ? ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version))',
    )
    expect(deleteBelowSql(shape, loc)).toBe('DELETE FROM `sk_user_0`.`orders_001` WHERE `order_id` = ? AND `version` < CAST(? AS UNSIGNED) AND UTC_TIMESTAMP(6) < ?')
    expect(deleteBelowSql(shape, loc, { force: true })).toBe('DELETE FROM `sk_user_0`.`orders_001` WHERE `order_id` = ? AND UTC_TIMESTAMP(6) < ?')
  })

  it('bounds a copy on the server: MariaDB SET STATEMENT, MySQL a SET_VAR hint; half the client bound, at most 1 s', () => {
    expect(serverRunBoundMs(2_000)).toBe(1_000)
    expect(serverRunBoundMs(500)).toBe(250)
    expect(serverRunBoundMs(60_000)).toBe(1_000)
    expect(boundCopySql({ name: 'mariadb' }, 'INSERT INTO t VALUES (1)', 500)).toBe('SET STATEMENT max_statement_time=0.250, innodb_lock_wait_timeout=1, lock_wait_timeout=1 FOR INSERT INTO t VALUES (1)')
    expect(boundCopySql({ name: 'mysql8' }, 'DELETE FROM t WHERE id = 1', 2_000)).toBe('DELETE /*+ SET_VAR(lock_wait_timeout=1) */ FROM t WHERE id = 1')
    expect(boundCopySql({ name: 'mysql57' }, 'DELETE FROM t WHERE id = 1', 2_000)).toBe('DELETE FROM t WHERE id = 1')
    // The deadline is the client bound less the run bound and the clock's uncertainty, on the server's clock.
    const clock = { dialect: { name: 'mariadb' as const, version: [10, 11, 0] as const, source: 'config' as const }, offsetMs: 60_000, uncertaintyMs: 2, at: 0 }
    expect(copyDeadline(clock, Date.UTC(2026, 0, 1), 2_000)).toBe('2026-01-01 00:01:00.993')
  })

  it('compares rows null-safely, as text', () => {
    const a = { order_id: '1', note: null, version: 2 }
    expect(differingColumns(a, { order_id: '1', note: null, version: '2' }, ['order_id', 'note', 'version'])).toEqual([])
    expect(differingColumns(a, { order_id: '1', note: '', version: 2 }, ['order_id', 'note', 'version'])).toEqual(['note'])
    expect(differingColumns({ note: 'NULL' }, { note: null }, ['note'])).toEqual(['note'])
  })

  it('binds objects as JSON text and keeps numbers', () => {
    expect(valuesOf({ a: 1, b: null, c: 'x' }, ['a', 'b', 'c', 'd'])).toEqual([1, null, 'x', null])
    expect(toOrderRow({ items: [{ sku: 'a' }], n: 3 }, ['items', 'n'])).toEqual({ items: '[{"sku":"a"}]', n: 3 })
  })

  it('formats DATETIME(3) in UTC', () => {
    expect(formatDateTime(Date.UTC(2026, 0, 2, 3, 4, 5, 67))).toBe('2026-01-02 03:04:05.067')
  })

  it('refuses unknown columns naming them', () => {
    expect(() => assertKnownColumns(shape, { order_id: '1', colour: 'red' }, 'row')).toThrow(/column "colour"/)
  })
})

describe('list cursors', () => {
  it('round-trips a position and stays opaque', () => {
    const c = encodeCursor({ createdAt: '2026-01-02 03:04:05.067', orderId: '123' })
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(decodeCursor(c)).toEqual({ createdAt: '2026-01-02 03:04:05.067', orderId: '123' })
  })

  it('refuses cursors it did not make', () => {
    for (const bad of ['', 'not a cursor', Buffer.from('2026-01-02|1').toString('base64url'), Buffer.from('2026-01-02 03:04:05|01').toString('base64url'), Buffer.from('2026-01-02 03:04:05|1|2').toString('base64url')]) {
      expect(() => decodeCursor(bad), bad).toThrow(/cursor is not one this store returned/)
    }
  })

  it('checks the page size', () => {
    expect(pageLimit(undefined)).toBe(50)
    expect(pageLimit(1000)).toBe(1000)
    expect(() => pageLimit(0)).toThrow(/limit must be/)
    expect(() => pageLimit(1.5)).toThrow(/limit must be/)
  })
})

describe('replay backoff', () => {
  it('doubles from the base up to the cap with equal jitter', () => {
    const o = { baseMs: 100, maxMs: 1000 }
    expect(backoffDelay(1, o, () => 0)).toBe(50)
    expect(backoffDelay(1, o, () => 0.999999)).toBe(100)
    expect(backoffDelay(3, o, () => 0)).toBe(200)
    expect(backoffDelay(10, o, () => 0)).toBe(500)
    expect(backoffDelay(10, o, () => 1)).toBe(1000)
    expect(backoffDelay(1e9, o, () => 0.5)).toBe(750)
  })
})
