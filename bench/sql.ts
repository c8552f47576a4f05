/**
 * `npm run bench:sql`: statements per second linted from a generated general
 * log (default 1,000,000 statements; target >= 50,000/s) and peak RSS at two
 * log sizes (should stay flat). Each size runs in its own child process so
 * peak RSS is that size's alone.
 * Usage: npm run bench:sql [-- --statements 1000000]
 */
import { execFileSync } from 'node:child_process'
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SqlLinter } from '../src/sql/linter.js'
import { readStatements } from '../src/sql/log-readers.js'
import { writeSyntheticGeneralLog } from '../test/fixtures/sql/general-log.js'

const TARGET = 50_000
const layout = { database: 'legacy', table: 'orders', userColumn: 'user_id', merchantColumn: 'merchant_id', primaryKey: 'order_id' }

async function child(path: string): Promise<void> {
  const linter = new SqlLinter(layout, { idCeiling: '1000000000' })
  let peak = process.memoryUsage().rss
  const t0 = process.hrtime.bigint()
  let n = 0
  for await (const s of readStatements(createReadStream(path, { highWaterMark: 256 * 1024 }), 'general', { name: path })) {
    if (s.end) linter.endSession(s.session ?? '-')
    else linter.add(s.sql, s.session ?? '-')
    if ((++n & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().rss)
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  peak = Math.max(peak, process.memoryUsage().rss)
  const r = linter.report()
  process.stdout.write(JSON.stringify({ statements: linter.statements, secs, peakRss: peak, digests: r.digests.length }) + '\n')
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv[0] === '--child') return child(argv[1]!)
  const i = argv.indexOf('--statements')
  const big = i >= 0 ? Number(argv[i + 1]) : 1_000_000
  const dir = mkdtempSync(join(tmpdir(), 'shardkit-bench-sql-'))
  try {
    const rows: { statements: number; bytes: number; secs: number; peakRss: number; digests: number }[] = []
    for (const count of [Math.floor(big / 4), big]) {
      const path = join(dir, `general-${count}.log`)
      await writeSyntheticGeneralLog(path, count, 1)
      const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', path], { encoding: 'utf8', maxBuffer: 1 << 20 })
      rows.push({ ...JSON.parse(out.trim().split('\n').pop()!), bytes: statSync(path).size })
      rmSync(path)
    }
    console.log(`shardctl sql lint, general log, node ${process.version}, ${(await import('node:os')).cpus().length} cores`)
    console.log('| statements | log MB | seconds | statements/s | vs target 50k/s | peak RSS MB | digests |')
    console.log('|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of rows) {
      const rate = r.statements / r.secs
      console.log(`| ${r.statements} | ${(r.bytes / 1e6).toFixed(1)} | ${r.secs.toFixed(2)} | ${Math.round(rate)} | ${(rate / TARGET).toFixed(2)}x | ${(r.peakRss / 1e6).toFixed(0)} | ${r.digests} |`)
    }
    console.log(`peak RSS ratio (large/small log, ${(rows[1]!.bytes / rows[0]!.bytes).toFixed(1)}x the bytes): ${(rows[1]!.peakRss / rows[0]!.peakRss).toFixed(2)}`)
    // the cold path: every statement a new digest, so every one is parsed
    const cold = 20_000
    const linter = new SqlLinter(layout)
    const t0 = process.hrtime.bigint()
    for (let k = 0; k < cold; k++) linter.add(`SELECT c${k}, status FROM orders WHERE user_id = ${k} AND merchant_id = 7 ORDER BY created_at DESC LIMIT 20`)
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    console.log(`cold path (every statement a distinct digest, parsed): ${cold} statements in ${secs.toFixed(2)} s = ${Math.round(cold / secs)}/s (${(cold / secs / TARGET).toFixed(2)}x target)`)
    console.log('no database is involved: lint reads the log file only')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
