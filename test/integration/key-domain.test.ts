/**
 * Issue 16, key domain: for random values across the range of each key
 * column type (INT, INT UNSIGNED, BIGINT, BIGINT UNSIGNED, DECIMAL(20,0)),
 * `shardOfKey`, the router and `shardctl route` / `shardctl id new` agree
 * with `MOD(key, 120)` computed by the server. A negative key of a signed
 * column (for which MOD is negative) routes nowhere: it is named, not
 * guessed.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { seededRandom } from '../../fixtures/generate-orders.js'
import { parseConfig } from '../../src/config/schema.js'
import { qualified, quoteIdent } from '../../src/runtime/mysql.js'
import { routeSync } from '../../src/router/router.js'
import { routeKey, shardOfKey } from '../../src/router/shard-function.js'
import { shardFieldUnchecked } from '../../src/idgen/layout.js'
import { adminPool, dropPrefixedDatabases, testFleetRaw, testMysqlUrl, testPrefix } from '../support/db.js'

const prefix = testPrefix('keydomain')
const DB = `${prefix}keys`
const dir = mkdtempSync(join(tmpdir(), 'shardkit-keydomain-'))
const cfgPath = join(dir, 'shardkit.json')
const emptyDir = mkdtempSync(join(tmpdir(), 'shardkit-keydomain-cwd-'))
const root = join(import.meta.dirname, '..', '..')
const raw = testFleetRaw({ prefix })
const config = parseConfig(raw, process.env)
let pool: Pool

/** Column type -> inclusive range of the values it holds. */
const TYPES: Record<string, [bigint, bigint]> = {
  'INT': [-(2n ** 31n), 2n ** 31n - 1n],
  'INT UNSIGNED': [0n, 2n ** 32n - 1n],
  'BIGINT': [-(2n ** 63n), 2n ** 63n - 1n],
  'BIGINT UNSIGNED': [0n, 2n ** 64n - 1n],
  'DECIMAL(20,0)': [-(10n ** 20n - 1n), 10n ** 20n - 1n],
}
const PER_TYPE = 3000

function randomIn(rnd: () => number, [lo, hi]: [bigint, bigint]): bigint {
  // 64 random bits (plus a few for DECIMAL(20,0)) folded into the range, so the whole width is covered.
  let r = 0n
  for (let i = 0; i < 5; i++) r = (r << 16n) | BigInt(Math.floor(rnd() * 65536))
  return lo + (r % (hi - lo + 1n))
}

/** `shardctl` with the test's config; without it (`id new --control` refuses a config) from a directory that has none. */
function shardctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const withConfig = !args.includes('--control')
  const env: Record<string, string | undefined> = { ...process.env, SHARDKIT_LOG_LEVEL: 'warn' }
  delete env.SHARDKIT_CONFIG
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', join(root, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs'), join(root, 'bin', 'shardctl.ts'), ...(withConfig ? ['-c', cfgPath] : []), ...args], { cwd: withConfig ? root : emptyDir, env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

beforeAll(async () => {
  writeFileSync(cfgPath, JSON.stringify(raw, null, 2))
  pool = adminPool()
  await pool.query(`CREATE DATABASE ${quoteIdent(DB)}`)
  const cols = Object.keys(TYPES).map((t, i) => `k${i} ${t} NOT NULL`)
  await pool.query(`CREATE TABLE ${qualified(DB, 'k')} (id INT NOT NULL, ${cols.join(', ')}, PRIMARY KEY (id)) ENGINE=InnoDB`)
  const rnd = seededRandom(16)
  const rows: string[][] = []
  for (let id = 0; id < PER_TYPE; id++) {
    rows.push([String(id), ...Object.values(TYPES).map((range) => {
      // The edges of each range first, then random values across it.
      const edges = [range[0], range[1], 0n, 119n, 120n, 2n ** 63n - 1n, 2n ** 63n, -1n].filter((e) => e >= range[0] && e <= range[1])
      return String(id < edges.length ? edges[id]! : randomIn(rnd, range))
    })])
  }
  await pool.query(`INSERT INTO ${qualified(DB, 'k')} VALUES ?`, [rows])
}, 60_000)

afterAll(async () => {
  await pool?.end()
  rmSync(dir, { recursive: true, force: true })
  rmSync(emptyDir, { recursive: true, force: true })
  await dropPrefixedDatabases(prefix)
})

describe('issue 16: keys route over the full range of the legacy key column types', () => {
  it.each(Object.keys(TYPES).map((t, i) => [t, i]))('%s: shardOfKey and the router agree with MOD(key, 120) in SQL', async (_type, i) => {
    const c = quoteIdent(`k${i}`)
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT CAST(${c} AS CHAR) AS v, MOD(${c}, 120) AS m FROM ${qualified(DB, 'k')} ORDER BY id`)
    expect(rows).toHaveLength(PER_TYPE)
    let routed = 0
    let negative = 0
    for (const r of rows) {
      const v = String(r.v)
      const m = Number(r.m)
      if (m < 0 || v.startsWith('-')) {
        // MOD of a negative key is negative: no shard; the router says so instead of guessing.
        expect(routeKey(v), v).toEqual(v === '-0' ? { shard: 0 } : { reason: 'negative' })
        negative++
        continue
      }
      expect(shardOfKey(v), v).toBe(m)
      expect(routeSync(config, { userId: v }).logicalShard, v).toBe(m)
      expect(routeSync(config, { merchantId: v }).logicalShard, v).toBe(m)
      routed++
    }
    expect(routed).toBeGreaterThan(PER_TYPE / 3)
    if (TYPES[_type as string]![0] < 0n) expect(negative).toBeGreaterThan(0)
  })

  it('shardctl route and id new take the largest BIGINT UNSIGNED and DECIMAL(20,0) users, as MOD says', async () => {
    for (const user of ['18446744073709551615', '99999999999999999999']) {
      const [[r]] = await pool.query<RowDataPacket[]>('SELECT MOD(CAST(? AS DECIMAL(20,0)), 120) AS m', [user])
      const route = await shardctl('route', '--user', user, '--json')
      expect(route.code, route.stderr).toBe(0)
      expect(JSON.parse(route.stdout)).toMatchObject({ dimension: 'user', logicalShard: Number(r!.m) })
      const ids = await shardctl('id', 'new', '--user', user, '--count', '2', '--json', '--control', `${testMysqlUrl()}/${prefix}ids`)
      expect(ids.code, ids.stderr).toBe(0)
      const j = JSON.parse(ids.stdout) as { userShard: number; ids: string[] }
      expect(j.userShard).toBe(Number(r!.m))
      for (const id of j.ids) expect(shardFieldUnchecked(id)).toBe(Number(r!.m))
    }
  }, 60_000)
})
