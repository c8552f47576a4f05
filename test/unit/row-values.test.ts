/**
 * Issue 16, point 1 and the hash: values keep every byte through the store's
 * binding, and the row hash is computed from what is stored (pure: SQL text
 * and values; the live round trip is test/integration/column-catalogue.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { format } from 'mysql2/promise'
import { bindValue, differingColumns, sameValue, selectByIdSql, toOrderRow, updateSql, valuesOf } from '../../src/dualwrite/row-sql.js'
import { kindOfType, readExpression, selectListSql } from '../../src/dualwrite/column-kinds.js'
import { rowTextSql, type ColumnInfo } from '../../src/verify/row-hash.js'

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
    expect(sameValue(a, b)).toBe(false)
    expect(sameValue(a, Buffer.from([0xff, 0x00]))).toBe(true)
    expect(sameValue(Buffer.from('abc'), 'abc')).toBe(true)
    expect(differingColumns({ t: a, n: null }, { t: b, n: null }, ['t', 'n'])).toEqual(['t'])
    expect(sameValue(null, undefined)).toBe(true)
    expect(sameValue(Buffer.alloc(0), null)).toBe(false)
  })
})

describe('FLOAT and GEOMETRY are read through expressions that keep every bit', () => {
  it('classifies types and writes the read expressions', () => {
    expect(kindOfType('FLOAT')).toBe('float')
    expect(kindOfType('point')).toBe('geometry')
    expect(kindOfType('bit')).toBe('bytes')
    expect(kindOfType('double')).toBe('number')
    expect(readExpression('w', 'float')).toBe('(`w` + 0E0) AS `w`')
    expect(readExpression('g', 'geometry', 'o')).toBe('CAST(`o`.`g` AS BINARY) AS `g`')
    expect(readExpression('n', undefined, 'o')).toBe('`o`.`n` AS `n`')
    expect(selectListSql(['id', 'w', 'g'], { w: 'float', g: 'geometry' })).toBe('`id`, (`w` + 0E0) AS `w`, CAST(`g` AS BINARY) AS `g`')
    const shape = { columns: ['id', 'w'], primaryKey: 'id', userColumn: 'u', merchantColumn: 'm', kinds: { w: 'float' as const } }
    expect(selectByIdSql(shape, loc, 'update')).toBe('SELECT `id`, (`w` + 0E0) AS `w` FROM `sk_user_0`.`orders_001` WHERE `id` = ? FOR UPDATE')
  })
})

describe('the row hash covers what is stored, not how the session prints it', () => {
  const col = (name: string, dataType: string, o: Partial<ColumnInfo> = {}): ColumnInfo => ({ name, nullable: false, stringish: !['float', 'double', 'timestamp', 'bit', 'int', 'bigint', 'decimal', 'datetime'].includes(dataType), dataType, collation: null, ...o })

  it('widens FLOAT, hashes TIMESTAMP by instant and BIT as a number (it printed 6 float digits and local time)', () => {
    const text = rowTextSql([col('id', 'bigint'), col('w', 'float'), col('d', 'double'), col('ts', 'timestamp', { nullable: true }), col('b', 'bit'), col('tok', 'varbinary', { stringish: true })])
    expect(text).toBe("CONCAT_WS('#',`id`,(`w` + 0E0),`d`,UNIX_TIMESTAMP(`ts`),(`b` + 0),OCTET_LENGTH(`tok`),`tok`,ISNULL(`ts`))")
  })

  it('hashes text as its bytes only when the text columns do not share a collation', () => {
    const one = rowTextSql([col('a', 'varchar', { collation: 'utf8mb4_unicode_ci' }), col('b', 'text', { collation: 'utf8mb4_unicode_ci' })])
    expect(one).not.toContain('CAST')
    const mixed = rowTextSql([col('a', 'varchar', { collation: 'utf8mb4_unicode_ci' }), col('b', 'varchar', { collation: 'utf8mb4_bin' }), col('g', 'geometry')])
    expect(mixed).toBe("CONCAT_WS('#',OCTET_LENGTH(`a`),CAST(`a` AS BINARY),OCTET_LENGTH(`b`),CAST(`b` AS BINARY),OCTET_LENGTH(`g`),`g`)")
  })
})
