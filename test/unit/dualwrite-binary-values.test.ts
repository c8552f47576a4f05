/**
 * Issue 16, point 1: values keep every byte through the store's binding
 * (pure: SQL text and values; the live round trip is
 * test/integration/column-catalogue.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { format } from 'mysql2/promise'
import { bindValue, differingColumns, sameValue, toOrderRow, updateSql, valuesOf } from '../../src/dualwrite/row-sql.js'

const loc = { side: 'user' as const, host: 'h1', database: 'sk_user_0', table: 'orders_001' }

describe('issue 16 point 1: binary values are bound as bytes, never as JSON text', () => {
  it('a VARBINARY token read back as a Buffer is written back as X\'..\' (it was {"type":"Buffer",...})', () => {
    const shape = { columns: ['order_id', 'token', 'status'], primaryKey: 'order_id', userColumn: 'u', merchantColumn: 'm' }
    const row = toOrderRow({ order_id: '7', token: Buffer.from([0x01, 0xff, 0x7b, 0x22, 0x00, 0xfe]), status: 'paid' }, shape.columns)
    expect(Buffer.isBuffer(row.token)).toBe(true)
    const sql = format(updateSql(shape, loc), [...valuesOf(row, ['token', 'status']), '7'])
    expect(sql).toContain("`token` = X'01ff7b2200fe'")
    expect(sql).not.toContain('Buffer')
  })

  it('keeps numbers, writes Dates as UTC text and booleans as 1/0, and objects as JSON', () => {
    expect(bindValue(1.0000001192092896)).toBe(1.0000001192092896)
    expect(bindValue(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe('2026-01-02 03:04:05.006')
    expect(bindValue(true)).toBe(1)
    expect(bindValue(12n)).toBe('12')
    expect(bindValue({ a: [1] })).toBe('{"a":[1]}')
    expect(bindValue(new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]))
  })

  it('compares bytes as bytes: two invalid UTF-8 values differ though they decode alike', () => {
    const a = Buffer.from([0xff, 0x00])
    const b = Buffer.from([0xfe, 0x00])
    expect(a.toString('utf8')).toBe(b.toString('utf8'))
    expect(differingColumns({ t: a }, { t: b }, ['t'])).toEqual(['t'])
    expect(differingColumns({ t: a, n: null }, { t: Buffer.from([0xff, 0x00]), n: null }, ['t', 'n'])).toEqual([])
    expect(differingColumns({ t: Buffer.from('abc') }, { t: 'abc' }, ['t'])).toEqual([])
    expect(differingColumns({ t: Buffer.alloc(0) }, { t: null }, ['t'])).toEqual(['t'])
  })
})
