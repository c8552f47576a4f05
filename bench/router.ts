/**
 * `npm run bench:router`, in one run:
 *  1. routing decisions per second (`routeSync`, no I/O) by user id, merchant
 *     id and new order id, against the targets (5M/s, 5M/s, 2M/s);
 *  2. a point read (one order by primary key) through the router (route the
 *     order id, then the host's pool from the runtime) beside the same SELECT
 *     through a bare mysql2 pool on the same table: p50/p99 of each and the
 *     p50 ratio (target <= 1.05). Reads are sequential (one client), the two
 *     paths interleaved in blocks so drift on a shared machine hits both.
 * Creates its own `skb_router_*` databases and drops them at the end.
 *
 * Env: BENCH_MYSQL_URL (default mysql://root@127.0.0.1:3306), BENCH_READS
 * (reads per path, default 20000), BENCH_ROWS (orders, default 20000).
 */
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import mysql from 'mysql2/promise'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { buildConfig } from '../src/config/init.js'
import { parseConfig } from '../src/config/schema.js'
import { encodeId, ID_EPOCH_MS } from '../src/idgen/layout.js'
import { provision } from '../src/provision/index.js'
import { routeSync } from '../src/router/router.js'
import { scatter } from '../src/router/scatter.js'
import { shardOfKey } from '../src/router/shard-function.js'
import { createMysqlPool, qualified, quoteIdent } from '../src/runtime/mysql.js'
import { openRuntime } from '../src/runtime/runtime.js'
import { legacyOrdersDDL } from '../fixtures/legacy-schema.js'
import { serverSettings } from './support/bench-fleet.js'

const url = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
const READS = Number(process.env.BENCH_READS ?? 20_000)
const ROWS = Number(process.env.BENCH_ROWS ?? 20_000)
const BLOCK = 500
const prefix = `skb_router_${randomBytes(3).toString('hex')}_`
const log = (s: string) => process.stderr.write(s + '\n')

const config = parseConfig(
  buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [url], databasesPerHost: 2, prefix, redisKeyPrefix: `${prefix}:` }),
  {},
)

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

let sink = 0
/** Median decisions/s over rounds of `n` calls cycling through `keys`. */
function decisionsPerSecond<K>(keys: readonly K[], route: (k: K) => { logicalShard: number }, n = 2_000_000, rounds = 7): number {
  const mask = keys.length - 1
  for (let i = 0; i < 300_000; i++) sink += route(keys[i & mask]!).logicalShard
  const rates: number[] = []
  for (let r = 0; r < rounds; r++) {
    let acc = 0
    const t0 = performance.now()
    for (let i = 0; i < n; i++) acc += route(keys[i & mask]!).logicalShard
    rates.push(n / ((performance.now() - t0) / 1000))
    sink += acc
  }
  return rates.sort((a, b) => a - b)[rates.length >> 1]!
}

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function main(): Promise<void> {
  // --- 1. routing decisions, pure CPU ---
  const rand = rng(7)
  const K = 1 << 16
  const userIds = Array.from({ length: K }, () => String(1 + Math.floor(rand() * 2_000_000_000)))
  const merchantIds = Array.from({ length: K }, () => String(1 + Math.floor(rand() * 5_000_000)))
  const baseTime = Date.UTC(2026, 0, 1) - ID_EPOCH_MS
  const orderIds = Array.from({ length: K }, (_, i) => encodeId({ time: baseTime + i, worker: i & 255, sequence: i & 127, shard: shardOfKey(userIds[i]!) }))
  const decisions = [
    { key: 'user id', target: 5e6, rate: decisionsPerSecond(userIds, (k) => routeSync(config, { userId: k })) },
    { key: 'merchant id', target: 5e6, rate: decisionsPerSecond(merchantIds, (k) => routeSync(config, { merchantId: k })) },
    { key: 'new order id', target: 2e6, rate: decisionsPerSecond(orderIds, (k) => routeSync(config, { orderId: k })) },
  ]

  // --- 2. point reads ---
  const admin = createMysqlPool(url, { connectionLimit: 2 })
  const rt = openRuntime(config, { connectionLimit: 8 })
  const u = new URL(url)
  const connection = { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username || 'root'), password: decodeURIComponent(u.password), connectionLimit: 4 }
  // The peer: a bare mysql2 pool with the same type settings as shardkit's pools, so the
  // difference is the router alone; plus one with mysql2's defaults, for reference.
  const bare: Pool = mysql.createPool({ ...connection, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, jsonStrings: true, charset: 'utf8mb4_general_ci' })
  const bareDefaults: Pool = mysql.createPool(connection)
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(config.legacy.database)}`)
    await admin.query(legacyOrdersDDL(config.legacy.database, config.legacy.table))
    await provision(rt)
    const ids: string[] = []
    const byShard = new Map<number, unknown[][]>()
    for (let i = 0; i < ROWS; i++) {
      const userId = String(1 + Math.floor(rand() * 2_000_000_000))
      const shard = shardOfKey(userId)
      const id = encodeId({ time: baseTime + i, worker: 1, sequence: i & 127, shard })
      ids.push(id)
      const items = JSON.stringify([{ sku: `sku-${i % 997}`, qty: 1 + (i % 3), price_cents: 1999 }])
      byShard.set(shard, [...(byShard.get(shard) ?? []), [id, userId, 1 + (i % 5000), 'paid', 1999, items, `addr ${i} some street, city`, '+86 138 0000 0000', '2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000']])
    }
    for (const [shard, rows] of byShard) {
      const p = config.dimensions.user.shards[shard]!
      await admin.query(
        `INSERT INTO ${qualified(p.database, p.table)} (order_id, user_id, merchant_id, status, total_cents, items, address, phone, created_at, updated_at) VALUES ?`,
        [rows],
      )
    }
    log(`inserted ${ROWS} orders over ${byShard.size} user shards`)
    const settings = await serverSettings(admin)

    const pick = Array.from({ length: READS + 2_000 }, () => ids[Math.floor(rand() * ids.length)]!)
    // The bare path knows each order's table in advance (precomputed SQL); the router path works it out per read.
    const bareSql = new Map<string, string>()
    for (const id of pick) {
      const r = routeSync(config, { orderId: id })
      bareSql.set(id, `SELECT * FROM ${qualified(r.database, r.table)} WHERE order_id = ?`)
    }
    const viaRouter = async (id: string) => {
      const r = routeSync(config, { orderId: id })
      const [rows] = await rt.host(r.host).query<RowDataPacket[]>(`SELECT * FROM ${qualified(r.database, r.table)} WHERE order_id = ?`, [id])
      return rows.length
    }
    const viaBare = (pool: Pool) => async (id: string) => {
      const [rows] = await pool.query<RowDataPacket[]>(bareSql.get(id)!, [id])
      return rows.length
    }
    const paths = [
      { name: 'router: routeSync(orderId) + rt.host(h).query', run: viaRouter, lat: [] as number[] },
      { name: 'bare mysql2 pool, same settings, same SQL', run: viaBare(bare), lat: [] as number[] },
      { name: 'bare mysql2 pool, mysql2 defaults', run: viaBare(bareDefaults), lat: [] as number[] },
    ]
    // warm-up: connections, plans, buffer pool
    for (let i = 0; i < 2_000; i++) for (const p of paths) if ((await p.run(pick[i]!)) !== 1) throw new Error('warm-up read found no row')
    let found = 0
    for (let start = 2_000; start < pick.length; start += BLOCK) {
      // rotate which path goes first in each block
      const order = paths.map((_, k) => paths[(k + start / BLOCK) % paths.length]!)
      for (const p of order) {
        for (let i = start; i < Math.min(start + BLOCK, pick.length); i++) {
          const t0 = performance.now()
          found += await p.run(pick[i]!)
          p.lat.push(performance.now() - t0)
        }
      }
    }
    if (found !== READS * paths.length) throw new Error(`expected every read to find its row (${found} of ${READS * paths.length})`)

    // --- 3. scatter-gather, for reference (no target in the issue) ---
    const scatterRows: { name: string; p50: number; p99: number }[] = []
    for (const limit of [100, 1000]) {
      const lat: number[] = []
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now()
        const r = await scatter(rt, { dimension: 'user', limit, concurrency: 8, explicit: true })
        if (r.rows.length !== limit) throw new Error('scatter returned too few rows')
        if (i >= 5) lat.push(performance.now() - t0)
      }
      lat.sort((a, b) => a - b)
      scatterRows.push({ name: `scatter, 120 shards, limit ${limit}, primary-key order, concurrency 8`, p50: pct(lat, 50), p99: pct(lat, 99) })
    }
    {
      const t0 = performance.now()
      let n = 0
      let after: string | undefined
      do {
        const page = await scatter(rt, { dimension: 'user', limit: 1000, after, explicit: true })
        n += page.rows.length
        after = page.nextCursor
      } while (after)
      if (n !== ROWS) throw new Error(`pagination saw ${n} of ${ROWS} rows`)
      scatterRows.push({ name: `scatter pagination over all ${ROWS} rows, pages of 1000 (whole walk)`, p50: performance.now() - t0, p99: NaN })
    }

    // --- report ---
    console.log(`shardctl router benchmark: node ${process.version}, ${os.cpus().length} cores (shared), ${settings}`)
    console.log('')
    console.log('| routing decision (routeSync, no I/O) | decisions/s | target | ratio to target |')
    console.log('|---|---:|---:|---:|')
    for (const d of decisions) console.log(`| by ${d.key} | ${(d.rate / 1e6).toFixed(2)}M | ${(d.target / 1e6).toFixed(0)}M | ${(d.rate / d.target).toFixed(2)}x |`)
    console.log('')
    console.log(`| point read by primary key (${READS} sequential reads per path, blocks of ${BLOCK} interleaved) | p50 ms | p99 ms | p50 / bare |`)
    console.log('|---|---:|---:|---:|')
    const stats = paths.map((p) => {
      const s = [...p.lat].sort((a, b) => a - b)
      return { name: p.name, p50: pct(s, 50), p99: pct(s, 99) }
    })
    const bareP50 = stats[1]!.p50
    for (const s of stats) console.log(`| ${s.name} | ${s.p50.toFixed(3)} | ${s.p99.toFixed(3)} | ${(s.p50 / bareP50).toFixed(3)} |`)
    const ratio = stats[0]!.p50 / bareP50
    console.log('')
    console.log('| scatter-gather (for reference) | p50 ms | p99 ms |')
    console.log('|---|---:|---:|')
    for (const s of scatterRows) console.log(`| ${s.name} | ${s.p50.toFixed(1)} | ${Number.isNaN(s.p99) ? '-' : s.p99.toFixed(1)} |`)
    console.log('')
    console.log(`router p50 / bare p50 = ${ratio.toFixed(3)} (target <= 1.05: ${ratio <= 1.05 ? 'met' : 'NOT met'})`)
    for (const d of decisions) console.log(`routing by ${d.key}: ${(d.rate / d.target).toFixed(2)}x the target (${d.rate >= d.target ? 'met' : 'NOT met'})`)
    if (sink === -1) console.log('')
  } finally {
    await rt.close()
    await Promise.allSettled([bare.end(), bareDefaults.end()])
    const [dbs] = await admin.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
    for (const r of dbs) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(r.name as string)}`)
    await admin.end()
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
