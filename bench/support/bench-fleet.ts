/**
 * A benchmark fleet on the local server: a legacy `orders` table filled with
 * generated rows and 120 + 120 provisioned shard tables, under a `skb_<name>_`
 * prefix. With `keep`, a fleet of the same name and size is reused across
 * runs (set BENCH_KEEP=1 while iterating; drop it with BENCH_DROP=1).
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig, type ShardkitConfig } from '../../src/config/schema.js'
import { provision } from '../../src/provision/index.js'
import { openFencesAt } from '../../src/cutover/fence.js'
import { createMysqlPool, qualified, quoteIdent } from '../../src/runtime/mysql.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { legacyOrdersDDL } from '../../fixtures/legacy-schema.js'
import { generateOrders } from '../../fixtures/generate-orders.js'

export const benchMysqlUrl = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
export const benchRedisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface BenchFleet {
  readonly prefix: string
  readonly config: ShardkitConfig
  /** The config as written to disk (for child processes). */
  readonly raw: unknown
  readonly rt: Runtime
  readonly admin: Pool
  readonly rows: number
  /** True when an existing fleet was reused. */
  readonly reused: boolean
  close(opts?: { drop?: boolean }): Promise<void>
}

export async function openBenchFleet(name: string, rows: number, opts: { keep?: boolean; log?: (s: string) => void; databasesPerHost?: number } = {}): Promise<BenchFleet> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'))
  const keep = opts.keep ?? process.env.BENCH_KEEP === '1'
  const prefix = keep ? `skb_${name}_${rows}_` : `skb_${name}_${Math.random().toString(16).slice(2, 8)}_`
  const raw = buildConfig({
    legacyUrl: benchMysqlUrl,
    legacyDatabase: `${prefix}legacy`,
    legacyTable: 'orders',
    idCeiling: String(rows + 1_000_000),
    shardHosts: [benchMysqlUrl],
    databasesPerHost: opts.databasesPerHost ?? 2,
    prefix,
    redisUrl: benchRedisUrl,
    redisKeyPrefix: `${prefix.replace(/_$/, '')}:`,
  })
  const config = parseConfig(raw, {})
  const admin = createMysqlPool(benchMysqlUrl, { connectionLimit: 4 })
  const legacy = qualified(config.legacy.database, config.legacy.table)
  let reused = false
  if (keep) {
    try {
      const [[r]] = await admin.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${legacy}`)
      reused = Number(r!.n) === rows
    } catch {
      reused = false
    }
  }
  if (!reused) {
    await dropPrefix(admin, prefix)
    await admin.query(`CREATE DATABASE ${quoteIdent(config.legacy.database)}`)
    await admin.query(legacyOrdersDDL(config.legacy.database, config.legacy.table))
    const t0 = performance.now()
    let shown = 0
    await generateOrders(admin, {
      database: config.legacy.database,
      table: config.legacy.table,
      rows,
      seed: 11,
      concurrency: 2,
      onProgress: (n) => {
        if (n - shown >= 200_000) log(`  generated ${(shown = n)} rows`)
      },
    })
    log(`  generated ${rows} legacy rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
  const rt = openRuntime(config, { connectionLimit: 8 })
  await provision(rt)
  await openFencesAt(rt, 1)
  return {
    prefix,
    config,
    raw,
    rt,
    admin,
    rows,
    reused,
    async close(o = {}) {
      await rt.close()
      if (o.drop ?? (!keep || process.env.BENCH_DROP === '1')) await dropPrefix(admin, prefix)
      await admin.end()
    },
  }
}

/** Rows in each dimension (all 120 tables). */
export async function dimensionRows(f: BenchFleet): Promise<{ user: number; merchant: number }> {
  const out = { user: 0, merchant: 0 }
  for (const dim of ['user', 'merchant'] as const) {
    for (const p of f.config.dimensions[dim].shards) {
      const [[r]] = await f.rt.host(p.host).query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(p.database, p.table)}`)
      out[dim] += Number(r!.n)
    }
  }
  return out
}

/** Peak memory of one backfill or verify in a child process. */
export async function measureInChild(f: BenchFleet, what: 'backfill' | 'verify', dir: string): Promise<{ seconds: number; rows: number; maxRssMb: number; clean?: boolean }> {
  const { writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { execFileSync } = await import('node:child_process')
  const file = join(dir, `${f.prefix}config.json`)
  writeFileSync(file, JSON.stringify(f.raw))
  const root = join(import.meta.dirname, '..', '..')
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'support', 'rss-child.ts'), what, file], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20 })
  return JSON.parse(out.trim().split('\n').pop()!)
}

/** Empties every shard table (keeps the legacy rows). */
export async function truncateShards(f: BenchFleet): Promise<void> {
  for (const dim of ['user', 'merchant'] as const) {
    for (const p of f.config.dimensions[dim].shards) await f.rt.host(p.host).query(`TRUNCATE TABLE ${qualified(p.database, p.table)}`)
  }
  await f.rt.control().query(`DELETE FROM ${qualified(f.config.control.database, 'backfill_checkpoint')}`)
}

async function dropPrefix(admin: Pool, prefix: string): Promise<void> {
  if (!/^skb_[a-z0-9]+_[0-9a-f]+_$/.test(prefix)) throw new Error(`refusing to drop databases for unexpected prefix ${prefix}`)
  const [rows] = await admin.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
  for (const r of rows) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(r.name as string)}`)
}

/** The server settings printed beside every figure. */
export async function serverSettings(pool: Pool): Promise<string> {
  const [rows] = await pool.query<RowDataPacket[]>(
    "SELECT @@version AS version, @@innodb_buffer_pool_size AS bp, @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sync_binlog, @@log_bin AS log_bin",
  )
  const r = rows[0]!
  return `server ${r.version}, innodb_buffer_pool_size ${Math.round(Number(r.bp) / 1048576)} MiB, innodb_flush_log_at_trx_commit ${r.flush}, log_bin ${r.log_bin}, sync_binlog ${r.sync_binlog}`
}
