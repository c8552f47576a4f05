/**
 * The dialect seam against the live server (MariaDB 10.11 here): read from
 * SELECT VERSION() and cached per pool; a config override wins over
 * detection. (The handshake-rewriting proxy: shard-query-handshake.test.ts.)
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createMysqlPool } from '../../src/runtime/mysql.js'
import { dialectOf, setPoolDialect } from '../../src/runtime/dialect.js'
import { readShard } from '../../src/router/shard-query.js'
import { testMysqlUrl } from '../support/db.js'

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

describe('portability: the dialect comes from what the server says, or from the config', () => {
  it('reads MariaDB from SELECT VERSION() and caches it per pool', async () => {
    const pool = createMysqlPool(testMysqlUrl(), { connectionLimit: 2 })
    cleanups.push(() => pool.end())
    const a = dialectOf(pool)
    expect(dialectOf(pool)).toBe(a)
    const d = await a
    expect(d.name).toBe('mariadb')
    expect(d.source).toBe('detected')
    expect(d.version[0]).toBeGreaterThanOrEqual(10)
  })

  it('a dialect set in the config wins over detection', async () => {
    const pool = createMysqlPool(testMysqlUrl(), { connectionLimit: 1 })
    cleanups.push(() => pool.end())
    setPoolDialect(pool, 'mysql8')
    expect(await dialectOf(pool)).toEqual({ name: 'mysql8', version: [8, 0, 20], source: 'config' })
    // On MariaDB the MySQL hint is a comment: the read runs (and the client deadline still holds).
    expect(await readShard({ pool, sql: 'SELECT 1 AS one', params: [], timeoutMs: 2_000 })).toEqual([{ one: 1 }])
  })
})
