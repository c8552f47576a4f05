/**
 * `npm run bench:verify`: a full verify of legacy against both dimensions
 * (3 x N rows read and hashed on the server) beside a raw scan of the same
 * tables, `COUNT(*) + BIT_XOR(CRC32(CONCAT_WS('#', all columns)))` per table
 * with the same number of queries in flight: the floor any checksum verify
 * stands on. Target: verify at least 70% of the raw scan's rows/s. Also the
 * peak RSS of a verify in its own process, at N and (BENCH_RSS_ROWS) 3M.
 *
 * Env: BENCH_ROWS (default 1,000,000), BENCH_ROUNDS (default 3),
 * BENCH_CONCURRENCY (default 2), BENCH_RSS_ROWS (default "1000000,3000000";
 * "" to skip), BENCH_KEEP=1 to keep the generated fleets for the next run,
 * BENCH_RSS_FLEET=backfill to measure RSS on the fleets bench:backfill kept.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pLimit from 'p-limit'
import type { RowDataPacket } from 'mysql2/promise'
import { runBackfill } from '../src/backfill/index.js'
import { runVerify } from '../src/verify/index.js'
import { qualified, quoteIdent } from '../src/runtime/mysql.js'
import { dimensionRows, measureInChild, openBenchFleet, serverSettings, truncateShards, type BenchFleet } from './support/bench-fleet.js'

const N = Number(process.env.BENCH_ROWS ?? 1_000_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const C = Number(process.env.BENCH_CONCURRENCY ?? 2)
const RSS_ROWS = (process.env.BENCH_RSS_ROWS ?? '1000000,3000000').split(',').filter(Boolean).map(Number)
const log = (s: string) => process.stderr.write(s + '\n')

async function backfilled(name: string, rows: number): Promise<BenchFleet> {
  const f = await openBenchFleet(name, rows, { log })
  const have = await dimensionRows(f)
  if (have.user !== rows || have.merchant !== rows) {
    log(`  backfilling ${rows} rows into both dimensions...`)
    await truncateShards(f)
    await runBackfill(f.rt, { restart: true })
  }
  return f
}

/** The raw scan: one COUNT + BIT_XOR(CRC32(CONCAT_WS)) per table, C at a time. */
async function rawScan(f: BenchFleet): Promise<{ seconds: number; rows: number }> {
  const cfg = f.config
  const [cols] = await f.rt.legacy().query<RowDataPacket[]>('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [cfg.legacy.database, cfg.legacy.table])
  const expr = `COUNT(*) AS n, BIT_XOR(CRC32(CONCAT_WS('#',${cols.map((r) => quoteIdent(r.c)).join(',')}))) AS x`
  const tables = [
    { pool: f.rt.legacy(), name: qualified(cfg.legacy.database, cfg.legacy.table) },
    ...(['user', 'merchant'] as const).flatMap((d) => cfg.dimensions[d].shards.map((p) => ({ pool: f.rt.host(p.host), name: qualified(p.database, p.table) }))),
  ]
  const limit = pLimit(C)
  const t0 = performance.now()
  const counts = await Promise.all(tables.map((t) => limit(async () => Number((await t.pool.query<RowDataPacket[]>(`SELECT ${expr} FROM ${t.name}`))[0][0]!.n))))
  return { seconds: (performance.now() - t0) / 1000, rows: counts.reduce((a, b) => a + b, 0) }
}

async function main(): Promise<void> {
  const f = await backfilled('verify', N)
  const settings = await serverSettings(f.admin)
  const raw: number[] = []
  const ours: number[] = []
  let narrowed = 0
  try {
    // Warm both once, then alternate so drift and caching hit both alike.
    await rawScan(f)
    await runVerify(f.rt, { concurrency: C, rounds: 1 })
    for (let r = 0; r < ROUNDS; r++) {
      const a = await rawScan(f)
      raw.push(a.rows / a.seconds)
      const v = await runVerify(f.rt, { concurrency: C, rounds: 1 })
      if (!v.clean) throw new Error(`verify found ${v.differences.length} differences on a fresh backfill`)
      narrowed += v.chunksNarrowed
      const rows = v.rowsCompared.legacy + v.rowsCompared.user + v.rowsCompared.merchant
      ours.push(rows / v.seconds)
      log(`  round ${r + 1}: raw scan ${Math.round(a.rows / a.seconds)} rows/s, verify ${Math.round(rows / v.seconds)} rows/s (${v.seconds.toFixed(2)} s)`)
    }
  } finally {
    await f.close()
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const rss: string[] = []
  const dir = mkdtempSync(join(tmpdir(), 'shardkit-bench-verify-'))
  try {
    for (const rows of RSS_ROWS) {
      // BENCH_RSS_FLEET=backfill reuses the fleets bench:backfill left (BENCH_KEEP=1): same generator, same seed.
      const g = await backfilled(process.env.BENCH_RSS_FLEET ?? 'verify', rows)
      try {
        const m = await measureInChild(g, 'verify', dir)
        rss.push(`| ${rows.toLocaleString('en-US')} | ${m.maxRssMb} MB | ${Math.round(m.rows / m.seconds).toLocaleString('en-US')} rows/s | ${m.clean ? 'clean' : 'NOT CLEAN'} |`)
      } finally {
        await g.close()
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const ratio = med(ours) / med(raw)
  console.log(`\n## verify vs a raw checksum scan (${N.toLocaleString('en-US')} legacy rows, 3 sides, ${C} queries in flight, median of ${ROUNDS})`)
  console.log(settings)
  console.log('\n| what | rows/s |\n|---|---:|')
  console.log(`| raw scan: COUNT + BIT_XOR(CRC32(CONCAT_WS)) per table | ${Math.round(med(raw)).toLocaleString('en-US')} |`)
  console.log(`| shardctl verify (chunk checksums, placement, shard fields) | ${Math.round(med(ours)).toLocaleString('en-US')} |`)
  console.log(`\nratio verify / raw scan: ${(ratio * 100).toFixed(1)}% (target >= 70%: ${ratio >= 0.7 ? 'met' : 'MISSED'}); chunks narrowed: ${narrowed}`)
  if (rss.length) console.log(`\n| legacy rows | peak RSS of verify | rows/s | result |\n|---:|---:|---:|---|\n${rss.join('\n')}`)
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
