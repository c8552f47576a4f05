/**
 * FLOAT and GEOMETRY are read through expressions that keep every bit
 * (src/dualwrite/column-kinds.ts); SQL text only.
 */
import { describe, expect, it } from 'vitest'
import { selectByIdSql } from '../../src/dualwrite/row-sql.js'
import { kindOfType, readExpression, selectListSql } from '../../src/dualwrite/column-kinds.js'
import { bindValue, sameValue } from '../../src/dualwrite/row-sql.js'

const loc = { side: 'user' as const, host: 'h1', database: 'sk_user_0', table: 'orders_001' }

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

describe('sameValue: the equality dual writes and replays use', () => {
  it('compares bytes as bytes, and a string given for a binary column by its UTF-8 bytes', () => {
    expect(sameValue(Buffer.from([0xff, 0x00]), Buffer.from([0xfe, 0x00]))).toBe(false)
    expect(sameValue(Buffer.from('abc'), 'abc')).toBe(true)
    expect(sameValue(null, undefined)).toBe(true)
    expect(sameValue(Buffer.alloc(0), null)).toBe(false)
    expect(sameValue(2, '2')).toBe(true)
    expect(bindValue(new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]))
  })
})
