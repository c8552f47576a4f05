/**
 * `npm run bench:backfill`: backfill rows/s per dimension beside a plain
 * client-side copy of the same legacy rows into one table (keyset reads,
 * mysql2 multi-row INSERT of each chunk, one connection): what a DBA's quick
 * script does. Target: at least 80% of the plain copy per dimension. Also
 * both dimensions in one pass, and the peak RSS of a backfill in its own
 * process at N and (BENCH_RSS_ROWS) 3M rows.
 *
 * Env: BENCH_ROWS (default 1,000,000), BENCH_CHUNK (plain copy rows per
 * statement, default 2,000), BENCH_RSS_ROWS (default "1000000,3000000"; ""
 * to skip), BENCH_KEEP=1 to keep the generated fleets for the next run.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RowDataPacket } from 'mysql2/promise'
import { runBackfill } from '../src/backfill/index.js'
import type { Dimension } from '../src/router/shard-function.js'
import { qualified, quoteIdent } from '../src/runtime/mysql.js'
import { measureInChild, openBenchFleet, serverSettings, truncateShards, type BenchFleet } from './support/bench-fleet.js'

const N = Number(process.env.BENCH_ROWS ?? 1_000_000)
const CHUNK = Number(process.env.BENCH_CHUNK ?? 2_000)
const RSS_ROWS = (process.env.BENCH_RSS_ROWS ?? '1000000,3000000').split(',').filter(Boolean).map(Number)
const log = (s: string) => process.stderr.write(s + '\n')

/** The plain copy: SELECT a keyset chunk, INSERT it into one table, repeat. */
async function plainCopy(f: BenchFleet): Promise<number> {
  const cfg = f.config
  const src = qualified(cfg.legacy.database, cfg.legacy.table)
  const dst = qualified(cfg.legacy.database, 'plain_copy')
  await f.admin.query(`DROP TABLE IF EXISTS ${dst}`)
  await f.admin.query(`CREATE TABLE ${dst} LIKE ${src}`)
  const [cols] = await f.admin.query<RowDataPacket[]>('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [cfg.legacy.database, cfg.legacy.table])
  const names = cols.map((r) => r.c as string)
  const list = names.map(quoteIdent).join(',')
  const ph = `(${names.map(() => '?').join(',')})`
  const pk = quoteIdent(cfg.legacy.primaryKey)
  const pool = f.rt.legacy()
  let last: string | null = null
  let copied = 0
  const t0 = performance.now()
  for (;;) {
    const [rows]: [RowDataPacket[], unknown] = await pool.query<RowDataPacket[]>(`SELECT ${list} FROM ${src} ${last === null ? '' : `WHERE ${pk} > ?`} ORDER BY ${pk} LIMIT ${CHUNK}`, last === null ? [] : [last])
    if (rows.length === 0) break
    await pool.query(`INSERT INTO ${dst} (${list}) VALUES ${new Array(rows.length).fill(ph).join(',')}`, rows.flatMap((r) => names.map((n) => r[n])))
    copied += rows.length
    last = String(rows[rows.length - 1]![cfg.legacy.primaryKey])
  }
  const s = (performance.now() - t0) / 1000
  await f.admin.query(`DROP TABLE ${dst}`)
  if (copied !== N) throw new Error(`plain copy copied ${copied} of ${N} rows`)
  return copied / s
}

async function ours(f: BenchFleet, dims: Dimension[]): Promise<{ rowsPerSecond: number; chunks: number }> {
  await truncateShards(f)
  const r = await runBackfill(f.rt, { dimensions: dims, restart: true })
  if (!r.completed || r.rowsCopied !== N) throw new Error(`backfill copied ${r.rowsCopied} of ${N}`)
  return { rowsPerSecond: r.rowsPerSecond, chunks: r.chunks }
}

async function main(): Promise<void> {
  const f = await openBenchFleet('backfill', N, { log })
  const settings = await serverSettings(f.admin)
  const rows: string[] = []
  let plain = 0
  let worst = Infinity
  try {
    // Alternate so drift and caching hit both alike: plain, user, plain, merchant, plain, both.
    const p1 = await plainCopy(f)
    const user = await ours(f, ['user'])
    const p2 = await plainCopy(f)
    const merchant = await ours(f, ['merchant'])
    const p3 = await plainCopy(f)
    const both = await ours(f, ['user', 'merchant'])
    plain = [p1, p2, p3].sort((a, b) => a - b)[1]!
    const row = (label: string, rps: number, writes: number) => {
      rows.push(`| ${label} | ${Math.round(rps).toLocaleString('en-US')} | ${Math.round(rps * writes).toLocaleString('en-US')} | ${((rps / plain) * 100).toFixed(1)}% |`)
    }
    rows.push(`| plain copy into one table (median of 3: ${[p1, p2, p3].map((x) => Math.round(x).toLocaleString('en-US')).join(', ')}) | ${Math.round(plain).toLocaleString('en-US')} | ${Math.round(plain).toLocaleString('en-US')} | 100% |`)
    row('backfill --dimension user (120 tables + lookup)', user.rowsPerSecond, 1)
    row('backfill --dimension merchant (120 tables)', merchant.rowsPerSecond, 1)
    row('backfill, both dimensions in one pass', both.rowsPerSecond, 2)
    worst = Math.min(user.rowsPerSecond, merchant.rowsPerSecond) / plain
  } finally {
    await f.close()
  }
  const rss: string[] = []
  const dir = mkdtempSync(join(tmpdir(), 'shardkit-bench-backfill-'))
  try {
    for (const n of RSS_ROWS) {
      const g = await openBenchFleet('backfill', n, { log })
      try {
        await truncateShards(g)
        const m = await measureInChild(g, 'backfill', dir)
        rss.push(`| ${n.toLocaleString('en-US')} | ${m.maxRssMb} MB | ${Math.round(m.rows / m.seconds).toLocaleString('en-US')} rows/s (both dimensions) |`)
      } finally {
        await g.close()
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`\n## backfill vs a plain copy (${N.toLocaleString('en-US')} legacy rows of ~370 bytes)`)
  console.log(settings)
  console.log('\n| what | legacy rows/s | rows written/s | of plain copy |\n|---|---:|---:|---:|')
  console.log(rows.join('\n'))
  console.log(`\nper dimension, worst of the two: ${(worst * 100).toFixed(1)}% of the plain copy (target >= 80%: ${worst >= 0.8 ? 'met' : 'MISSED'})`)
  if (rss.length) console.log(`\n| legacy rows | peak RSS of backfill | speed |\n|---:|---:|---:|\n${rss.join('\n')}`)
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
