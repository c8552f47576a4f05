/**
 * Scatter-gather on real MariaDB: 120 + 120 provisioned shard tables, rows
 * spread over most shards, ordering across shards, keyset pagination, the row
 * cap, a per-shard timeout (a table locked by another connection; a host
 * behind a blackholed TCP proxy) under both failure policies, and the guard
 * against an unasked scatter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pool, PoolConnection } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { queryOrders, scatter, type ScatterResult } from '../../src/router/scatter.js'
import { isShardkitError, type ShardkitError } from '../../src/errors.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix } from '../support/db.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'

const prefix = testPrefix('scatter')
const config = testFleetConfig({ prefix })
const N = 700
let rt: Runtime
let admin: Pool

interface TestRow {
  order_id: string
  user_id: string
  merchant_id: string
  status: string
  created_at: string
}
const rows: TestRow[] = []

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const big = (s: string) => BigInt(s)
/** The expected order, computed independently of the library: created_at desc, order_id asc. */
const byCreatedDescThenId = (a: TestRow, b: TestRow) =>
  a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : big(a.order_id) < big(b.order_id) ? -1 : big(a.order_id) > big(b.order_id) ? 1 : 0
const byId = (a: TestRow, b: TestRow) => (big(a.order_id) < big(b.order_id) ? -1 : big(a.order_id) > big(b.order_id) ? 1 : 0)

async function insertRows(): Promise<void> {
  const rand = rng(3)
  for (let i = 1; i <= N; i++) {
    // ids of 2 to 17 digits, so a string comparison would order them wrongly
    const orderId = String(BigInt(i) ** 3n * 104729n + 17n)
    const sec = Math.floor(rand() * 90) // few distinct timestamps: many ties broken by order_id
    rows.push({
      order_id: orderId,
      user_id: String(1 + Math.floor(rand() * 5000)),
      merchant_id: String(1 + Math.floor(rand() * 400)),
      status: rand() < 0.5 ? 'paid' : 'new',
      created_at: `2026-01-01 10:${String(Math.floor(sec / 60)).padStart(2, '0')}:${String(sec % 60).padStart(2, '0')}.000`,
    })
  }
  for (const dim of ['user', 'merchant'] as const) {
    const groups = new Map<number, TestRow[]>()
    for (const r of rows) {
      const shard = Number(big(dim === 'user' ? r.user_id : r.merchant_id) % 120n)
      groups.set(shard, [...(groups.get(shard) ?? []), r])
    }
    for (const [shard, group] of groups) {
      const p = config.dimensions[dim].shards[shard]!
      await admin.query(
        `INSERT INTO ${qualified(p.database, p.table)} (order_id, user_id, merchant_id, status, total_cents, items, created_at, updated_at) VALUES ${group.map(() => '(?, ?, ?, ?, 100, ?, ?, ?)').join(', ')}`,
        group.flatMap((r) => [r.order_id, r.user_id, r.merchant_id, r.status, '[]', r.created_at, r.created_at]),
      )
    }
  }
}

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  const report = await provision(rt)
  expect(report.conflicts).toEqual([])
  admin = adminPool()
  await insertRows()
})
afterAll(async () => {
  await admin?.end()
  await rt?.close()
  await dropPrefixedDatabases(prefix)
})

async function codeOf(p: Promise<unknown>): Promise<ShardkitError> {
  try {
    await p
  } catch (err) {
    if (isShardkitError(err)) return err
    throw err
  }
  throw new Error('expected a ShardkitError')
}

const order = [{ column: 'created_at', direction: 'desc' as const }]

describe('scatter-gather over 120 shards', () => {
  it('merges rows from all shards in the global order (created_at desc, then the primary key)', async () => {
    const shardsUsed = new Set(rows.map((r) => Number(big(r.user_id) % 120n)))
    expect(shardsUsed.size).toBeGreaterThan(100)
    const r = await scatter(rt, { dimension: 'user', orderBy: order, limit: 10_000, explicit: true })
    expect(r.complete).toBe(true)
    expect(r.shardsQueried).toBe(120)
    expect(r.nextCursor).toBeUndefined()
    expect(r.rows.map((x) => x.order_id)).toEqual([...rows].sort(byCreatedDescThenId).map((x) => x.order_id))
    // BIGINTs stay exact decimal strings
    expect(typeof r.rows[0]!.order_id).toBe('string')
  })

  it('pages through every row exactly once with keyset cursors, on both dimensions', async () => {
    for (const dim of ['user', 'merchant'] as const) {
      const seen: string[] = []
      let after: string | undefined
      let pages = 0
      do {
        const page: ScatterResult = await scatter(rt, { dimension: dim, orderBy: order, limit: 37, after, explicit: true })
        expect(page.rows.length).toBeLessThanOrEqual(37)
        seen.push(...page.rows.map((x) => String(x.order_id)))
        after = page.nextCursor
        pages++
      } while (after !== undefined)
      expect(new Set(seen).size).toBe(seen.length)
      expect(seen).toEqual([...rows].sort(byCreatedDescThenId).map((x) => x.order_id))
      expect(pages).toBe(Math.ceil(N / 37))
    }
  })

  it('pages a filtered query by primary key only, and a cursor cannot be reused with another filter', async () => {
    const where = [{ column: 'status', op: '=' as const, value: 'paid' }]
    const expected = rows.filter((r) => r.status === 'paid').sort(byId).map((r) => r.order_id)
    const seen: string[] = []
    let after: string | undefined
    do {
      const page = await scatter(rt, { dimension: 'merchant', where, columns: ['order_id', 'status'], limit: 100, after, explicit: true })
      for (const row of page.rows) expect(Object.keys(row).sort()).toEqual(['order_id', 'status'])
      seen.push(...page.rows.map((x) => String(x.order_id)))
      after = page.nextCursor
      if (after) {
        const e = await codeOf(scatter(rt, { dimension: 'merchant', where: [{ column: 'status', op: '=', value: 'new' }], limit: 100, after, explicit: true }))
        expect(e.code).toBe('USAGE')
        expect(e.details.argument).toBe('after')
      }
    } while (after !== undefined)
    expect(seen).toEqual(expected)
  })

  it('pages with mixed directions (created_at asc, order_id desc) under an IN and a range filter', async () => {
    const merchants = [...new Set(rows.map((r) => r.merchant_id))].slice(0, 40)
    const from = '2026-01-01 10:00:30.000'
    const where = [
      { column: 'merchant_id', op: 'in' as const, value: merchants },
      { column: 'created_at', op: '>=' as const, value: from },
    ]
    const orderBy = [{ column: 'created_at', direction: 'asc' as const }, { column: 'order_id', direction: 'desc' as const }]
    const expected = rows
      .filter((r) => merchants.includes(r.merchant_id) && r.created_at >= from)
      .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : -byId(a, b)))
      .map((r) => r.order_id)
    expect(expected.length).toBeGreaterThan(20)
    const seen: string[] = []
    let after: string | undefined
    do {
      const page = await scatter(rt, { dimension: 'user', where, orderBy, limit: 7, after, explicit: true })
      seen.push(...page.rows.map((x) => String(x.order_id)))
      after = page.nextCursor
    } while (after !== undefined)
    expect(seen).toEqual(expected)
  })

  it('caps the rows at limit and returns the first rows of the order', async () => {
    const r = await scatter(rt, { dimension: 'merchant', orderBy: order, limit: 50, explicit: true })
    expect(r.rows).toHaveLength(50)
    expect(r.nextCursor).toBeDefined()
    expect(r.rows.map((x) => x.order_id)).toEqual([...rows].sort(byCreatedDescThenId).slice(0, 50).map((x) => x.order_id))
    expect((await codeOf(scatter(rt, { dimension: 'user', limit: 10_001, explicit: true }))).details.argument).toBe('limit')
    expect((await codeOf(scatter(rt, { dimension: 'user', explicit: true } as never))).details.argument).toBe('limit')
    expect((await codeOf(scatter(rt, { dimension: 'user', limit: 5, concurrency: 0, explicit: true }))).details.argument).toBe('concurrency')
  })

  it('rejects column names that are not plain identifiers of the shard tables, naming the option', async () => {
    const bad = await codeOf(scatter(rt, { dimension: 'user', orderBy: [{ column: 'created_at` DESC; --' }], limit: 5, explicit: true }))
    expect(bad.code).toBe('USAGE')
    expect(bad.details.argument).toBe('orderBy[0].column')
    const unknown = await codeOf(scatter(rt, { dimension: 'user', where: [{ column: 'nope', op: '=', value: 1 }], limit: 5, explicit: true }))
    expect(unknown.details.argument).toBe('where[0].column')
    const text = await codeOf(scatter(rt, { dimension: 'user', orderBy: [{ column: 'status' }], limit: 5, explicit: true }))
    expect(text.message).toMatch(/cannot be merged across shards/)
    const badName = await codeOf(scatter(rt, { dimension: 'user', columns: ['order_id', 'note;'], limit: 5, explicit: true }))
    expect(badName.details.argument).toBe('columns[1]')
  })

  it('refuses a query without a shard key unless explicit, and routes one with a key to one shard', async () => {
    expect((await codeOf(scatter(rt, { dimension: 'user', limit: 5 } as never))).code).toBe('SCATTER_REFUSED')
    expect((await codeOf(queryOrders(rt, { limit: 5 }))).code).toBe('SCATTER_REFUSED')
    const all = await queryOrders(rt, { limit: 5, explicit: true, dimension: 'merchant' })
    expect(all.shardsQueried).toBe(120)

    const m = rows[0]!.merchant_id
    const mine = await queryOrders(rt, { merchantId: m, orderBy: order, limit: 1000 })
    expect(mine.shardsQueried).toBe(1)
    expect(mine.rows.map((x) => x.order_id)).toEqual(rows.filter((r) => r.merchant_id === m).sort(byCreatedDescThenId).map((r) => r.order_id))
    const u = rows[1]!.user_id
    const theirs = await queryOrders(rt, { userId: u, limit: 1000 })
    expect(theirs.rows.map((x) => x.order_id)).toEqual(rows.filter((r) => r.user_id === u).sort(byId).map((r) => r.order_id))
  })

  describe('a slow shard (its table locked by another connection)', () => {
    const shard = 77
    const p = config.dimensions.user.shards[shard]!
    let locker: PoolConnection

    beforeAll(async () => {
      locker = await admin.getConnection()
      await locker.query(`LOCK TABLES ${qualified(p.database, p.table)} WRITE`)
    })
    afterAll(async () => {
      await locker?.query('UNLOCK TABLES')
      locker?.release()
    })

    it("'fail' throws SHARD_TIMEOUT naming the shard and its host", async () => {
      const t0 = performance.now()
      const e = await codeOf(scatter(rt, { dimension: 'user', limit: 100, shardTimeoutMs: 400, explicit: true }))
      expect(e.code).toBe('SHARD_TIMEOUT')
      expect(e.details).toMatchObject({ dimension: 'user', shard, host: p.host })
      expect(e.message).toContain(`user shard ${shard} on host ${p.host}`)
      expect(performance.now() - t0).toBeLessThan(5_000)
    })

    it("'partial' returns every other shard's rows with complete: false and the failed shard", async () => {
      const r = await scatter(rt, { dimension: 'user', limit: 10_000, shardTimeoutMs: 400, onShardFailure: 'partial', explicit: true })
      expect(r.complete).toBe(false)
      expect(r.failedShards).toEqual([expect.objectContaining({ shard, host: p.host, code: 'SHARD_TIMEOUT' })])
      const expected = rows.filter((x) => Number(big(x.user_id) % 120n) !== shard).sort(byId)
      expect(rows.length - expected.length).toBeGreaterThan(0)
      expect(r.rows.map((x) => x.order_id)).toEqual(expected.map((x) => x.order_id))
      // the runtime's pools are still healthy: abandoned connections were destroyed, not reused
      const again = await scatter(rt, { dimension: 'merchant', limit: 10_000, explicit: true })
      expect(again.rows).toHaveLength(N)
    })
  })

  describe('an unreachable host (a blackholed TCP proxy in front of it)', () => {
    let proxy: TcpProxy
    let rt2: Runtime
    beforeAll(async () => {
      const direct = new URL(testMysqlUrl())
      proxy = await startTcpProxy({ targetHost: direct.hostname, targetPort: Number(direct.port || 3306) })
      const viaProxy = new URL(testMysqlUrl())
      viaProxy.port = String(proxy.port)
      // Two hosts with one database each per dimension: the same databases and tables as `config`, h2 through the proxy.
      const c2 = testFleetConfig({ prefix, shardHosts: [testMysqlUrl(), viaProxy.toString()], databasesPerHost: 1 })
      expect(c2.dimensions.merchant.shards[60]).toMatchObject({ host: 'h2', database: config.dimensions.merchant.shards[60]!.database })
      rt2 = openRuntime(c2)
      // warm up both hosts, then the second stops answering
      expect((await scatter(rt2, { dimension: 'merchant', limit: 10_000, explicit: true })).rows).toHaveLength(N)
      proxy.blackhole()
    })
    afterAll(async () => {
      proxy?.cut()
      await rt2?.close()
      await proxy?.close()
    })

    it("'partial' lists the 60 shards of the silent host; 'fail' throws SHARD_TIMEOUT", async () => {
      const r = await scatter(rt2, { dimension: 'merchant', limit: 10_000, shardTimeoutMs: 300, onShardFailure: 'partial', concurrency: 16, explicit: true })
      expect(r.complete).toBe(false)
      expect(r.failedShards.map((f) => f.shard)).toEqual(Array.from({ length: 60 }, (_, i) => 60 + i))
      expect(new Set(r.failedShards.map((f) => `${f.host}/${f.code}`))).toEqual(new Set(['h2/SHARD_TIMEOUT']))
      expect(r.rows.map((x) => x.order_id)).toEqual(rows.filter((x) => Number(big(x.merchant_id) % 120n) < 60).sort(byId).map((x) => x.order_id))

      const e = await codeOf(scatter(rt2, { dimension: 'merchant', limit: 10, shardTimeoutMs: 300, explicit: true }))
      expect(e.code).toBe('SHARD_TIMEOUT')
      expect(e.details.host).toBe('h2')
      expect(Number(e.details.shard)).toBeGreaterThanOrEqual(60)
    })
  })

  it('stops with ABORTED when the signal fires', async () => {
    const ac = new AbortController()
    ac.abort()
    expect((await codeOf(scatter(rt, { dimension: 'user', limit: 5, signal: ac.signal, explicit: true }))).code).toBe('ABORTED')
  })
})
