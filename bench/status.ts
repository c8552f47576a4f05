/**
 * `npm run bench:status`: how fast `shardctl status` answers on a 2 x 120
 * fleet (240 logical shards), backfilled, verified, with job reports, per
 * layout of the shards over databases. Target: p50 under 300 ms.
 *
 * Beside it, in the same run: the floor (one `SELECT 1` to the control
 * database, legacy and every host, and a Redis PING, all at once: the
 * least any status that touches each source can cost) and `cutover status`
 * (readCutoverStatus, the narrower status that existed before). Ratios are
 * printed against both; also the CLI end to end (`node dist/bin/shardctl.js
 * status --json`, process start included) when dist/ is built.
 *
 * Env: BENCH_ROWS (default 50,000), BENCH_RUNS (default 60), BENCH_LAYOUTS
 * (databases per dimension, default "2,60"), BENCH_KEEP=1 to keep the fleets.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runBackfill } from '../src/backfill/index.js'
import { runVerify, recordVerifyRun } from '../src/verify/index.js'
import { openJobControl } from '../src/jobs/control.js'
import { readStatus } from '../src/status/build.js'
import { readCutoverStatus } from '../src/cutover/status.js'
import { primaryDatabases } from '../src/dualwrite/placement.js'
import { poolFor } from '../src/dualwrite/connections.js'
import { qualified } from '../src/runtime/mysql.js'
import { openBenchFleet, serverSettings, type BenchFleet } from './support/bench-fleet.js'

const ROWS = Number(process.env.BENCH_ROWS ?? 50_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 60)
const LAYOUTS = (process.env.BENCH_LAYOUTS ?? '2,60').split(',').filter(Boolean).map(Number)
const log = (s: string) => process.stderr.write(s + '\n')
const root = join(import.meta.dirname, '..')

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

async function timed(runs: number, fn: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  for (let i = 0; i < 3; i++) await fn()
  const ms: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    await fn()
    ms.push(performance.now() - t)
  }
  return { p50: pct(ms, 50), p95: pct(ms, 95) }
}

/** Backfill under job control and a recorded verify, so every section of the status has data. */
async function prepare(f: BenchFleet): Promise<void> {
  const jc = await openJobControl(f.rt, 'backfill', { scope: 'user+merchant' })
  const r = await runBackfill(f.rt, { restart: true, control: jc })
  await jc.finish('finished', { rowsDone: r.rowsTotal, rowsTotal: r.rowsTotal, chunks: r.chunks, chunkSize: 0, concurrency: 4 })
  const v = await runVerify(f.rt)
  await recordVerifyRun(f.rt, { dimension: 'all', since: null, startedAt: v.startedAt, clean: v.clean, differences: v.differences.length, rowsCompared: v.keysCompared, summary: { byPair: v.byPair, pairs: v.pairs, byShard: { user: {}, merchant: {} } } })
}

/** The least a status can cost: one trivial read per source, all at once (the fence row of each primary database). */
async function floor(f: BenchFleet): Promise<void> {
  const primaries = primaryDatabases(f.config)
  const others = Object.keys(f.config.hosts).filter((h) => !primaries.some((p) => p.host === h))
  await Promise.all([
    f.rt.control().query('SELECT 1'),
    f.rt.redis().ping(),
    ...primaries.map((p) => poolFor(f.rt, p.host).query(`SELECT state FROM ${qualified(p.database, 'shardkit_fence')} WHERE id = 1`)),
    ...others.map((h) => f.rt.host(h).query('SELECT 1')),
  ])
}

const lines: string[] = []
for (const dbs of LAYOUTS) {
  log(`== layout: 120 + 120 shards over ${dbs} + ${dbs} databases (${dbs + 1} primary databases), ${ROWS} rows`)
  const f = await openBenchFleet(`status${dbs}`, ROWS, { log, databasesPerHost: dbs })
  try {
    await prepare(f)
    const doc = await readStatus(f.rt)
    if (doc.shards.counts.all.verified !== 240) throw new Error(`the bench fleet is not in the state it should be: ${JSON.stringify(doc.shards.counts.all)}`)
    const status = await timed(RUNS, () => readStatus(f.rt))
    const base = await timed(RUNS, () => floor(f))
    const cutover = await timed(RUNS, () => readCutoverStatus(f.rt))
    let cli = ''
    const bin = join(root, 'dist', 'bin', 'shardctl.js')
    if (existsSync(bin)) {
      const dir = mkdtempSync(join(tmpdir(), 'shardkit-bench-status-'))
      const file = join(dir, 'shardkit.json')
      writeFileSync(file, JSON.stringify(f.raw))
      const run = (args: string[]) => {
        const ms: number[] = []
        for (let i = 0; i < 7; i++) {
          const t = performance.now()
          execFileSync(process.execPath, [bin, '-c', file, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'ignore'] })
          ms.push(performance.now() - t)
        }
        return pct(ms, 50)
      }
      const whole = run(['status', '--json'])
      // The process start alone (module loading), the same for every command.
      const start = run(['--help'])
      rmSync(dir, { recursive: true, force: true })
      cli = `; CLI end to end p50 ${whole.toFixed(0)} ms, of which the process start (\`shardctl --help\`) p50 ${start.toFixed(0)} ms`
    }
    const line = `status (${dbs}+${dbs} dbs): p50 ${status.p50.toFixed(1)} ms, p95 ${status.p95.toFixed(1)} ms (target p50 < 300 ms: ${status.p50 < 300 ? 'met' : 'NOT met'}); floor (one round trip per source) p50 ${base.p50.toFixed(1)} ms -> ${(status.p50 / base.p50).toFixed(1)}x the floor; cutover status p50 ${cutover.p50.toFixed(1)} ms -> ${(status.p50 / cutover.p50).toFixed(2)}x${cli}`
    lines.push(line)
    log(line)
  } finally {
    await f.close()
  }
}
const { createMysqlPool } = await import('../src/runtime/mysql.js')
const admin = createMysqlPool(process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306')
log(`\n${await serverSettings(admin)}`)
await admin.end()
process.stdout.write(lines.join('\n') + '\n')
