/**
 * Issue 16, point 3 (verify's half, pure): a legacy row whose key routes
 * nowhere is never compared as if it had a shard (shardOfKey("null") threw
 * and stopped the verify); any copy of it is extra.
 */
import { describe, expect, it } from 'vitest'
import { compareKey, shardOfValue } from '../../src/verify/compare.js'
import type { Entry } from '../../src/verify/streams.js'

const ctx = { ceiling: '1000', pairs: ['legacy-user', 'legacy-merchant', 'user-merchant'] as const }
const entry = (o: Partial<Entry>): Entry => ({ pk: '7', user: '5', merchant: '9', hash: 'h', shard: -1, ...o })

describe('verify and rows no key routes', () => {
  it('reports nothing for the legacy row itself (the verifier lists it as unroutable) and every copy as extra', () => {
    expect(compareKey('7', entry({ user: null }), [], [], { ...ctx, pairs: [...ctx.pairs] })).toEqual([])
    const copies = compareKey('7', entry({ merchant: '-3' }), [entry({ shard: 5 })], [entry({ shard: 9 })], { ...ctx, pairs: [...ctx.pairs] })
    expect(copies).toEqual([
      { pair: 'legacy-user', kind: 'extra', key: '7', shard: 5 },
      { pair: 'legacy-merchant', kind: 'extra', key: '7', shard: 9 },
    ])
  })

  it('compares a routable row above 2^63-1 by its shard', () => {
    const u = '18446744073709551614'
    const want = shardOfValue(u)!
    expect(want).toBe(Number(BigInt(u) % 120n))
    expect(compareKey('7', entry({ user: u }), [entry({ user: u, shard: want })], [entry({ shard: 9 })], { ...ctx, pairs: [...ctx.pairs] })).toEqual([])
    expect(compareKey('7', entry({ user: u }), [entry({ user: u, shard: 0 })], [entry({ shard: 9 })], { ...ctx, pairs: [...ctx.pairs] })).toEqual([{ pair: 'legacy-user', kind: 'misplaced', key: '7', shard: 0 }])
  })

  it('with legacy retired, a copy whose key routes nowhere is misplaced wherever it is', () => {
    expect(compareKey('7', undefined, [entry({ user: null, shard: 3 })], [entry({ shard: 9 })], { ceiling: '1000', pairs: ['user-merchant'] })).toContainEqual({ pair: 'user-merchant', kind: 'misplaced', key: '7', shard: 3 })
  })
})
