import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'
import { isShardkitError } from '../../src/errors.js'

const base = () =>
  buildConfig({
    legacyUrl: 'mysql://root@127.0.0.1:3306',
    legacyDatabase: 'legacy',
    legacyTable: 'orders',
    idCeiling: '1000000',
    shardHosts: ['mysql://root@127.0.0.1:3306', 'mysql://app:${DB_PW}@127.0.0.1:3307'],
    databasesPerHost: 2,
  })

function problems(raw: unknown, env: Record<string, string> = { DB_PW: 'pw' }): string[] {
  try {
    parseConfig(raw, env)
  } catch (err) {
    if (isShardkitError(err, 'CONFIG_INVALID')) return err.details.problems as string[]
    throw err
  }
  return []
}

describe('config schema', () => {
  it('accepts what buildConfig writes and places every shard once', () => {
    const c = parseConfig(base(), { DB_PW: 'p@ss:word' })
    for (const dim of ['user', 'merchant'] as const) {
      expect(c.dimensions[dim].shards).toHaveLength(120)
      c.dimensions[dim].shards.forEach((p, i) => expect(p.shard).toBe(i))
    }
    expect(c.dimensions.user.shards[7]!.table).toBe('orders_007')
    // the password from the environment is URL-encoded into the host URL
    expect(c.hosts.h2).toBe('mysql://app:p%40ss%3Aword@127.0.0.1:3307')
  })

  it('reports a missing shard, a duplicate, an unknown host and an unset variable together', () => {
    const raw = base() as any
    raw.dimensions.user.placement[0].shards = '1-29' // shard 0 missing
    raw.dimensions.merchant.placement[1].shards = '0-59' // overlaps placement[0]
    raw.dimensions.merchant.placement[2].host = 'nope'
    const found = problems(raw, {})
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^dimensions\.user\.placement: does not place user shards 0;/),
        expect.stringMatching(/^dimensions\.merchant\.placement\[1\]\.shards: places merchant shard 0 a second time/),
        expect.stringMatching(/^dimensions\.merchant\.placement\[2\]\.host: names host "nope"/),
        expect.stringMatching(/^hosts\.h2: refers to \$\{DB_PW\}, which is not set/),
      ]),
    )
  })

  it('rejects identifiers with a backtick or a space, and bad URLs, with their paths', () => {
    const raw = base() as any
    raw.legacy.table = 'ord`ers'
    raw.dimensions.user.placement[0].table = 'orders {shard}'
    raw.hosts.h1 = 'not a url'
    const found = problems(raw)
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^legacy\.table: must be a plain identifier/),
        expect.stringMatching(/^dimensions\.user\.placement\[0\]\.table: must be a plain identifier/),
        expect.stringMatching(/^hosts\.h1: is not a valid URL/),
      ]),
    )
  })
})
