/**
 * Issue 16, point 3 (pure half): every value of the legacy key column types
 * routes to key mod 120, and a key with no shard is named instead of thrown.
 * The SQL half (MOD(user_id, 120) on the server) is in
 * test/integration/key-domain.test.ts.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { routeKey, shardOfKey, unroutableSql } from '../../src/router/shard-function.js'
import { isShardkitError } from '../../src/errors.js'

describe('issue 16 point 3: keys route over the full range of their column types', () => {
  it('routes user ids above 2^63-1 (backfill stopped dead at "18446744073709551614 is not valid")', () => {
    expect(shardOfKey('18446744073709551614', 'user column')).toBe(Number(18446744073709551614n % 120n))
    expect(shardOfKey('18446744073709551615')).toBe(15)
    expect(shardOfKey('9223372036854775808')).toBe(Number(2n ** 63n % 120n))
    expect(shardOfKey('99999999999999999999')).toBe(Number(99999999999999999999n % 120n))
    expect(shardOfKey(2n ** 64n - 1n)).toBe(15)
  })

  it('agrees with BigInt arithmetic for every width: INT, BIGINT, BIGINT UNSIGNED, DECIMAL(20,0)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 10n ** 20n - 1n })), (k) => {
        const want = Number(k % 120n)
        return shardOfKey(k.toString()) === want && shardOfKey(k) === want && (routeKey(k.toString()) as { shard: number }).shard === want
      }),
      { numRuns: 20_000 },
    )
  })

  it('refuses what no key column of a routable type holds, naming the argument', () => {
    for (const bad of ['100000000000000000000', '-1', '007', '1.5', '', 'abc', '+3']) {
      let err: unknown
      try {
        shardOfKey(bad, '--user')
      } catch (e) {
        err = e
      }
      expect(isShardkitError(err, 'ID_INVALID'), bad).toBe(true)
      expect((err as Error).message).toContain('--user')
    }
    expect(() => shardOfKey(-1n)).toThrow(/not valid/)
    expect(() => shardOfKey(10n ** 20n)).toThrow(/not valid/)
  })

  it('names the keys that route nowhere instead of throwing', () => {
    expect(routeKey(null)).toEqual({ reason: 'null' })
    expect(routeKey(undefined)).toEqual({ reason: 'null' })
    expect(routeKey('-42')).toEqual({ reason: 'negative' })
    expect(routeKey(-42)).toEqual({ reason: 'negative' })
    expect(routeKey('12.50')).toEqual({ reason: 'not-an-integer' })
    expect(routeKey(Buffer.from('1'))).toEqual({ reason: 'not-an-integer' })
    expect(routeKey(241)).toEqual({ shard: 1 })
    expect(unroutableSql('`u`', { nullable: true, unsigned: false })).toBe('`u` IS NULL OR `u` < 0')
    expect(unroutableSql('`u`', { nullable: false, unsigned: true })).toBe('')
  })
})
