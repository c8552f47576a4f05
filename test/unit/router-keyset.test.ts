import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { compareDecimals, compareKeys, compareValues, decodeCursor, encodeCursor, keysetPredicate, sortKindOf, type SortColumn } from '../../src/router/keyset.js'
import { MinHeap, mergeSorted } from '../../src/router/merge.js'
import { isShardkitError } from '../../src/errors.js'

const order: SortColumn[] = [
  { column: 'created_at', direction: 'desc', kind: 'temporal' },
  { column: 'order_id', direction: 'asc', kind: 'int' },
]

describe('keyset comparisons', () => {
  it('compares BIGINT decimal strings numerically, not as text', () => {
    expect(compareValues('int', '9', '10')).toBeLessThan(0)
    expect(compareValues('int', '-10', '-9')).toBeLessThan(0)
    expect(compareValues('int', '9223372036854775807', '9223372036854775806')).toBeGreaterThan(0)
    expect(compareValues('int', 5, '5')).toBe(0)
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), (a, b) => {
        expect(Math.sign(compareValues('int', String(a), String(b)))).toBe(a < b ? -1 : a > b ? 1 : 0)
      }),
    )
  })

  it('compares DECIMAL strings exactly, whatever their scale', () => {
    expect(compareDecimals('12.50', '12.5')).toBe(0)
    expect(compareDecimals('-0.00', '0')).toBe(0)
    expect(compareDecimals('-1.5', '-1.25')).toBeLessThan(0)
    expect(compareDecimals('100.01', '99.999')).toBeGreaterThan(0)
    expect(compareDecimals('0.1', '0.09')).toBeGreaterThan(0)
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.nat(6), (a, b, scale) => {
        const fmt = (v: bigint) => {
          const s = (v < 0n ? -v : v).toString().padStart(scale + 1, '0')
          return `${v < 0n ? '-' : ''}${scale ? `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}` : s}`
        }
        expect(Math.sign(compareDecimals(fmt(a), fmt(b)))).toBe(a < b ? -1 : a > b ? 1 : 0)
      }),
    )
  })

  it('maps information_schema types to sort kinds, refusing text', () => {
    expect(sortKindOf('bigint')).toBe('int')
    expect(sortKindOf('DECIMAL')).toBe('decimal')
    expect(sortKindOf('datetime')).toBe('temporal')
    expect(sortKindOf('double')).toBe('float')
    // single precision has its own kind so the planner can refuse it as an order column (issue 17)
    expect(sortKindOf('float')).toBe('float32')
    expect(sortKindOf('FLOAT')).toBe('float32')
    expect(sortKindOf('varchar')).toBe('other')
    expect(sortKindOf('json')).toBe('other')
  })

  it('orders keys by direction, the later column breaking ties', () => {
    expect(compareKeys(order, ['2026-01-02 00:00:00.000', '5'], ['2026-01-01 00:00:00.000', '1'])).toBeLessThan(0)
    expect(compareKeys(order, ['2026-01-01 00:00:00.000', '10'], ['2026-01-01 00:00:00.000', '9'])).toBeGreaterThan(0)
    expect(compareKeys(order, ['2026-01-01 00:00:00.000', '9'], ['2026-01-01 00:00:00.000', '9'])).toBe(0)
  })
})

describe('keyset predicate', () => {
  it('expands to OR branches with bound values and the right operator per direction', () => {
    const p = keysetPredicate(order, ['2026-01-01 00:00:00.000', '42'])
    expect(p.sql).toBe('((`created_at` < ?) OR (`created_at` = ? AND `order_id` > ?))')
    expect(p.params).toEqual(['2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000', '42'])
  })
})

describe('cursors', () => {
  it('round-trip for the same query and are refused for another one, naming "after"', () => {
    const c = encodeCursor('fp1', ['2026-01-01 00:00:00.000', '42'])
    expect(decodeCursor(c, 'fp1', order)).toEqual(['2026-01-01 00:00:00.000', '42'])
    for (const [cursor, fp] of [
      [c, 'fp2'],
      ['not base64 json', 'fp1'],
      [encodeCursor('fp1', ['2026-01-01', 'DROP TABLE']), 'fp1'],
      [encodeCursor('fp1', ['x']), 'fp1'],
    ] as const) {
      try {
        decodeCursor(cursor, fp, order)
        expect.fail(`accepted ${cursor}`)
      } catch (err) {
        expect(isShardkitError(err, 'USAGE')).toBe(true)
        expect((err as { details: { argument: string } }).details.argument).toBe('after')
      }
    }
  })
})

describe('k-way merge', () => {
  it('merges sorted lists into the sorted whole, capped', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 30 }), { maxLength: 20 }), fc.nat(400), (lists, cap) => {
        const sorted = lists.map((l) => [...l].sort((a, b) => a - b))
        const all = sorted.flat().sort((a, b) => a - b)
        expect(mergeSorted(sorted, (a, b) => a - b, cap)).toEqual(all.slice(0, cap))
      }),
    )
  })

  it('pops a heap in order', () => {
    const h = new MinHeap<number>((a, b) => a - b)
    for (const v of [5, 1, 4, 1, 3, 9, 2]) h.push(v)
    const out: number[] = []
    while (h.size > 0) out.push(h.pop()!)
    expect(out).toEqual([1, 1, 2, 3, 4, 5, 9])
    expect(h.pop()).toBeUndefined()
  })
})
