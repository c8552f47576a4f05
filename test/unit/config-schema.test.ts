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

  it('reports shape problems and placement problems in one pass (a bad table name AND a missing shard)', () => {
    const raw = base() as any
    raw.dimensions.user.placement[1].table = 'orders {shard}' // zod: not an identifier
    raw.dimensions.user.placement[0].shards = '0-28' // shard 29 missing
    raw.dimensions.merchant.placement[3].host = 'h9' // unknown host
    raw.dimensions.merchant.placement[2].table = raw.dimensions.merchant.placement[3].table
    raw.dimensions.merchant.placement[2].database = raw.dimensions.merchant.placement[3].database
    raw.dimensions.merchant.placement[2].host = raw.dimensions.merchant.placement[3].host
    raw.legacy.idCeiling = 'lots'
    const found = problems(raw, {})
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^dimensions\.user\.placement\[1\]\.table: must be a plain identifier/),
        expect.stringMatching(/^dimensions\.user\.placement: does not place user shards 29;/),
        expect.stringMatching(/^dimensions\.merchant\.placement\[3\]\.host: names host "h9"/),
        expect.stringMatching(/^dimensions\.merchant\.placement\[2\]\.host: names host "h9"/),
        expect.stringMatching(/^legacy\.idCeiling: must be a decimal string/),
        expect.stringMatching(/^hosts\.h2: refers to \$\{DB_PW\}, which is not set/),
      ]),
    )
    // every problem once
    expect(new Set(found).size).toBe(found.length)
  })

  it('reports a table shared by two shards and a bad shard range even when zod failed elsewhere', () => {
    const raw = base() as any
    raw.legacy.url = 'http://nope'
    raw.dimensions.user.placement[0].table = 'orders_fixed' // every shard of the range in one table
    raw.dimensions.merchant.placement[0].shards = '0-200'
    const found = problems(raw)
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^legacy\.url: must use mysql: or mariadb:/),
        expect.stringMatching(/^dimensions\.user\.placement\[0\]\.table: puts user shard 1 in \w+\.orders_fixed on host h1, which already holds user shard 0/),
        expect.stringMatching(/^dimensions\.merchant\.placement\[0\]\.shards: shard 200 is out of range/),
      ]),
    )
  })

  it('survives input of the wrong shape without throwing anything but CONFIG_INVALID, without knock-on messages', () => {
    const raw = base() as any
    raw.hosts = 'h1'
    raw.dimensions.user = { placement: 'everything' }
    raw.dimensions.merchant.placement[0] = null
    const found = problems(raw)
    expect(found).toEqual(expect.arrayContaining([expect.stringMatching(/^hosts: /), expect.stringMatching(/^dimensions\.user\.placement: /), expect.stringMatching(/^dimensions\.merchant\.placement\[0\]: /)]))
    // no host check without a hosts map, and no "does not place" for a placement that is not a list
    expect(found.filter((p) => /names host/.test(p))).toEqual([])
    expect(found.filter((p) => /does not place user/.test(p))).toEqual([])
    for (const junk of [null, 42, [], 'x']) expect(problems(junk).length).toBeGreaterThan(0)
  })
})
