import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  ID_EPOCH_MS,
  ID_TIME_LIMIT_MS,
  MAX_TIME,
  assertIdSyntax,
  classifyId,
  compareIds,
  decodeId,
  encodeId,
  encodeIdUnchecked,
  shardFieldUnchecked,
  shardOfId,
} from '../../src/idgen/layout.js'
import { isShardkitError } from '../../src/errors.js'

const MAX_ID = 2n ** 63n - 1n

/** The fields of any 63-bit value, shard field unchecked (it may be 120..127 here). */
function fieldsOf(v: bigint): [number, number, number, number] {
  return [Number(v >> 22n), Number((v >> 14n) & 255n), Number((v >> 7n) & 127n), Number(v & 127n)]
}

function expectIdInvalid(fn: () => unknown, pattern: RegExp): void {
  try {
    fn()
  } catch (err) {
    expect(isShardkitError(err, 'ID_INVALID')).toBe(true)
    expect((err as Error).message).toMatch(pattern)
    return
  }
  throw new Error('expected ID_INVALID')
}

describe('layout constants', () => {
  it('the time field runs out at 2094-09-07T15:47:35.551Z, 69.7 years after the epoch', () => {
    expect(new Date(ID_EPOCH_MS).toISOString()).toBe('2025-01-01T00:00:00.000Z')
    expect(new Date(ID_TIME_LIMIT_MS).toISOString()).toBe('2094-09-07T15:47:35.551Z')
    expect(MAX_TIME).toBe(2 ** 41 - 1)
  })
  it('the largest id is 2^63-1 (signed BIGINT max)', () => {
    expect(encodeId({ time: MAX_TIME, worker: 255, sequence: 127, shard: 119 })).toBe(((BigInt(MAX_TIME) << 22n) | (255n << 14n) | (127n << 7n) | 119n).toString())
    expect(encodeIdUnchecked(MAX_TIME, 255, 127, 127)).toBe(MAX_ID.toString())
  })
})

describe('decimal encoder (Number only) agrees with BigInt formatting', () => {
  const edges = [0n, 1n, 127n, 128n, 2n ** 22n - 1n, 2n ** 22n, 999_999n, 1_000_000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, MAX_ID - 1n, MAX_ID]
  it.each(edges.map((v) => [v.toString()]))('%s', (s) => {
    expect(encodeIdUnchecked(...fieldsOf(BigInt(s)))).toBe(s)
  })
  it('on 100,000 random 63-bit values', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_ID }), (v) => encodeIdUnchecked(...fieldsOf(v)) === v.toString()),
      { numRuns: 100_000 },
    )
  })
})

describe('encode/decode round trip', () => {
  const fields = fc.record({
    time: fc.integer({ min: 0, max: MAX_TIME }),
    worker: fc.integer({ min: 0, max: 255 }),
    sequence: fc.integer({ min: 0, max: 127 }),
    shard: fc.integer({ min: 0, max: 119 }),
  })
  it('decodeId(encodeId(f)) returns f, and shardOfId the shard', () => {
    fc.assert(
      fc.property(fields, (f) => {
        const id = encodeId(f)
        const d = decodeId(id)
        expect({ time: d.time, worker: d.worker, sequence: d.sequence, shard: d.shard }).toEqual(f)
        expect(d.timestampMs).toBe(ID_EPOCH_MS + f.time)
        expect(shardOfId(id)).toBe(f.shard)
        expect(shardFieldUnchecked(id)).toBe(f.shard)
        expect(BigInt(id) >= 0n && BigInt(id) <= MAX_ID).toBe(true)
      }),
      { numRuns: 20_000 },
    )
  })
  it('decode splits any valid id exactly as BigInt shifts do', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: MAX_ID }), (v) => {
        const [time, worker, sequence, shard] = fieldsOf(v)
        fc.pre(shard < 120)
        const d = decodeId(v.toString())
        return d.time === time && d.worker === worker && d.sequence === sequence && d.shard === shard
      }),
      { numRuns: 20_000 },
    )
  })
  it('encodeId refuses fields out of range instead of masking them', () => {
    expectIdInvalid(() => encodeId({ time: 0, worker: 256, sequence: 0, shard: 0 }), /worker 256/)
    expectIdInvalid(() => encodeId({ time: 0, worker: 0, sequence: 128, shard: 0 }), /sequence 128/)
    expectIdInvalid(() => encodeId({ time: 0, worker: 0, sequence: 0, shard: 120 }), /shard 120/)
    expectIdInvalid(() => encodeId({ time: -1, worker: 0, sequence: 0, shard: 0 }), /time -1/)
    expectIdInvalid(() => encodeId({ time: MAX_TIME + 1, worker: 0, sequence: 0, shard: 0 }), /time/)
    expectIdInvalid(() => encodeId({ time: 1.5, worker: 0, sequence: 0, shard: 0 }), /time 1.5/)
  })
})

describe('parsing rejects what is not a new-style id, saying what was wrong', () => {
  const shard120 = ((1n << 22n) | 120n).toString()
  const shard127 = ((1n << 22n) | 127n).toString()
  it.each([
    ['', /empty/],
    ['-5', /negative/],
    ['12a4', /not digits/],
    [' 123', /not digits/],
    ['1e18', /not digits/],
    ['0', /leading zero/],
    ['0123', /leading zero/],
    ['9223372036854775808', /above 2\^63-1/],
    ['18446744073709551615', /above 2\^63-1/],
    [shard120, /shard field 120/],
    [shard127, /shard field 127/],
  ])('%j', (input, pattern) => {
    expectIdInvalid(() => decodeId(input), pattern)
    expectIdInvalid(() => shardOfId(input), pattern)
  })
  it('a number is refused: ids above 2^53 lose digits as numbers', () => {
    expectIdInvalid(() => assertIdSyntax(250868843663069191 as unknown), /decimal string/)
  })
  it('names the argument it was given', () => {
    expectIdInvalid(() => decodeId('007', 'argument <id>'), /^argument <id> "007"/)
  })
})

describe('ordering and classification', () => {
  it('compareIds agrees with BigInt order across 17/18/19-digit ids', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: MAX_ID }), fc.bigInt({ min: 1n, max: MAX_ID }), (a, b) => {
        const want = a < b ? -1 : a > b ? 1 : 0
        return compareIds(a.toString(), b.toString()) === want
      }),
      { numRuns: 20_000 },
    )
    expect(compareIds('99999999999999999', '100000000000000000')).toBe(-1)
  })
  it('ids of a later millisecond are larger whatever their worker and sequence', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TIME - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (t, w1, w2) => {
        return compareIds(encodeIdUnchecked(t, w1, 127, 119), encodeIdUnchecked(t + 1, w2, 0, 0)) === -1
      }),
    )
  })
  it('classifyId: at or below the ceiling is legacy, above is new', () => {
    expect(classifyId('1000000000', '1000000000')).toBe('legacy')
    expect(classifyId('999', '1000000000')).toBe('legacy')
    expect(classifyId('1000000001', '1000000000')).toBe('new')
    expect(classifyId(encodeIdUnchecked(Date.UTC(2026, 0, 1) - ID_EPOCH_MS, 0, 0, 0), '1000000000')).toBe('new')
  })
})
