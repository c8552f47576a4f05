import { describe, expect, it } from 'vitest'
import { assertKnownColumns, differingColumns, fencedDeleteSql, fencedUpsertSql, formatDateTime, toOrderRow, upsertSql, valuesOf } from '../../src/dualwrite/row-sql.js'
import { decodeCursor, encodeCursor, pageLimit } from '../../src/dualwrite/cursor.js'
import { backoffDelay } from '../../src/dualwrite/backoff.js'

const shape = { columns: ['order_id', 'user_id', 'merchant_id', 'note', 'version', 'updated_at'], primaryKey: 'order_id', userColumn: 'user_id', merchantColumn: 'merchant_id' }
const loc = { side: 'user' as const, host: 'h1', database: 'sk_user_0', table: 'orders_001' }

describe('dual-write SQL', () => {
  it('upserts with a version guard and assigns version last', () => {
    const sql = upsertSql(shape, loc)
    expect(sql).toMatch(/^INSERT INTO `sk_user_0`.`orders_001` \(`order_id`, `user_id`, `merchant_id`, `note`, `version`, `updated_at`\) VALUES \(\?, \?, \?, \?, \?, \?\) ON DUPLICATE KEY UPDATE /)
    expect(sql).toContain('`note` = IF(VALUES(`version`) >= `version`, VALUES(`note`), `note`)')
    expect(sql.endsWith('`version` = GREATEST(`version`, VALUES(`version`))')).toBe(true)
    expect(sql).not.toContain('`order_id` = IF')
  })

  it('fences copies into a side that can become the primary on its own database\'s fence row', () => {
    const up = fencedUpsertSql(shape, loc)
    expect(up).toMatch(/^INSERT INTO `sk_user_0`.`orders_001` \(.*\) SELECT \?, \?, \?, \?, \?, \? FROM DUAL WHERE EXISTS \(SELECT 1 FROM `sk_user_0`.`shardkit_fence` WHERE id = 1 AND stage_version = \? AND state = 'open'\) ON DUPLICATE KEY UPDATE /)
    expect(up.endsWith('`version` = GREATEST(`version`, VALUES(`version`))')).toBe(true)
    expect(fencedDeleteSql(shape, loc)).toBe(
      "DELETE FROM `sk_user_0`.`orders_001` WHERE `order_id` = ? AND EXISTS (SELECT 1 FROM `sk_user_0`.`shardkit_fence` WHERE id = 1 AND stage_version = ? AND state = 'open')",
    )
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
