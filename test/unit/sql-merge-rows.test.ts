/**
 * mergeShardRows / mergeAffectedRows (src/sql/merge-rows.ts): the merge a
 * plan states, run on per-shard results as mysql2 returns them (BIGINT and
 * DECIMAL as decimal strings, DATETIME as text). The oracle runs it on real
 * results; these pin the arithmetic and ordering rules.
 */
import { describe, expect, it } from 'vitest'
import { compareValues, mergeAffectedRows, mergeShardRows, type ShardRows } from '../../src/sql/merge-rows.js'
import type { MergeSpec } from '../../src/sql/merge-spec.js'

const LONGLONG = 8
const NEWDECIMAL = 246
const VARCHAR = 253
const base: MergeSpec = { kind: 'rows', groupBy: [], combine: null, orderBy: [], limit: null, offset: 0, perShardLimit: 'none' }

describe('mergeShardRows', () => {
  it('adds COUNT and DECIMAL SUM exactly (beyond 2^53), ignores NULL sums, takes MIN/MAX by value', () => {
    const fields = [{ name: 'status', columnType: VARCHAR }, { name: 'n', columnType: LONGLONG }, { name: 's', columnType: NEWDECIMAL }, { name: 'lo', columnType: LONGLONG }, { name: 'hi', columnType: LONGLONG }]
    const spec: MergeSpec = { ...base, kind: 'groups', groupBy: [{ index: 0 }], combine: ['key', 'sum', 'sum', 'min', 'max'] }
    const shards: ShardRows[] = [
      { fields, rows: [['paid', '2', '9007199254740993.50', '9', '10'], ['new', '1', null, '5', '5']] },
      { fields, rows: [['PAID', '3', '0.75', '10', '9']] },
      { fields, rows: [['new', '4', '-1.25', '100', '100']] },
    ]
    const out = mergeShardRows(spec, shards).rows
    // utf8mb4_*_ci groups 'paid' with 'PAID'
    expect(out).toEqual([['paid', '5', '9007199254740994.25', '9', '10'], ['new', '5', '-1.25', '5', '100']])
  })

  it('orders numbers by value (as text from BIGINT columns), NULL first ascending, text case-insensitively; then skips and keeps', () => {
    const fields = [{ name: 'id', columnType: LONGLONG }, { name: 'note', columnType: VARCHAR }]
    const shards: ShardRows[] = [{ fields, rows: [['10', 'b'], ['9', null]] }, { fields, rows: [['100', 'A'], [null, 'c']] }]
    expect(mergeShardRows({ ...base, orderBy: [{ column: { index: 0 }, desc: false }] }, shards).rows.map((r) => r[0])).toEqual([null, '9', '10', '100'])
    expect(mergeShardRows({ ...base, orderBy: [{ column: { name: 'id' }, desc: true }], limit: 2, offset: 1 }, shards).rows.map((r) => r[0])).toEqual(['10', '9'])
    expect(mergeShardRows({ ...base, orderBy: [{ column: { index: 1 }, desc: false }] }, shards).rows.map((r) => r[1])).toEqual([null, 'A', 'b', 'c'])
  })

  it('combines BIT_AND / BIT_OR / BIT_XOR with 64-bit values', () => {
    const fields = [{ name: 'a', columnType: LONGLONG }, { name: 'o', columnType: LONGLONG }, { name: 'x', columnType: LONGLONG }]
    const spec: MergeSpec = { ...base, kind: 'groups', combine: ['bit_and', 'bit_or', 'bit_xor'] }
    // an empty shard's BIT_AND is all ones, its BIT_OR and BIT_XOR zero
    const out = mergeShardRows(spec, [{ fields, rows: [['18446744073709551615', '0', '0']] }, { fields, rows: [['6', '6', '6']] }, { fields, rows: [['3', '9', '3']] }]).rows
    expect(out).toEqual([['2', '15', '5']])
  })

  it('refuses a spec that names a column the results lack', () => {
    expect(() => mergeShardRows({ ...base, orderBy: [{ column: { name: 'created_at' }, desc: false }] }, [{ fields: [{ name: 'id' }], rows: [[1]] }])).toThrow(/created_at/)
  })

  it('adds up affected rows; compares decimals of different scales by value', () => {
    expect(mergeAffectedRows([2, 0, 3])).toBe(5)
    expect(compareValues('1.50', '1.5', true)).toBe(0)
    expect(compareValues('-2', '1.0', true)).toBeLessThan(0)
    expect(compareValues('2025-01-02 00:00:00.000', '2025-01-10 00:00:00.000', false)).toBeLessThan(0)
  })
})
