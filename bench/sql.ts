/**
 * `npm run bench:sql`: statements per second linted from a generated general
 * log (default 1,000,000 statements; target >= 50,000/s) and peak RSS at two
 * log sizes (should stay flat). Each size runs in its own child process so
 * peak RSS is that size's alone. In the same child, two references measured
 * on the same file: reading the log alone (the floor no lint can beat) and
 * reading + digesting (what a statement costs before any verdict).
 *
 * The cold path (every statement a new digest, so every one is parsed) is
 * measured against the parser alone on the same statements, in the same run:
 * the parser is the limit of that path.
 * Usage: npm run bench:sql [-- --statements 1000000] [-- --cold 20000]
 */
import { execFileSync } from 'node:child_process'
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { digestOf, LiteralCapture } from '../src/sql/digest.js'
import { SqlLinter } from '../src/sql/linter.js'
import { readStatements } from '../src/sql/log-readers.js'
import { parseStatement } from '../src/sql/parse.js'
import { writeSyntheticGeneralLog } from '../test/fixtures/sql/general-log.js'

const TARGET = 50_000
const COLD_GOAL = 20_000
const layout = { database: 'legacy', table: 'orders', userColumn: 'user_id', merchantColumn: 'merchant_id', primaryKey: 'order_id' }

async function pass(path: string, each: (sql: string, session: string, end: boolean) => void): Promise<{ n: number; secs: number; peak: number }> {
  let peak = process.memoryUsage().rss
  let n = 0
  const t0 = process.hrtime.bigint()
  for await (const s of readStatements(createReadStream(path, { highWaterMark: 256 * 1024 }), 'general', { name: path })) {
    each(s.sql, s.session ?? '-', !!s.end)
    if ((++n & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().rss)
  }
  return { n, secs: Number(process.hrtime.bigint() - t0) / 1e9, peak: Math.max(peak, process.memoryUsage().rss) }
}

async function child(path: string): Promise<void> {
  // the lint first, so its peak RSS is its own
  const linter = new SqlLinter(layout, { idCeiling: '1000000000' })
  const lint = await pass(path, (sql, session, end) => (end ? linter.endSession(session) : linter.add(sql, session)))
  const r = linter.report()
  const readOnly = await pass(path, () => undefined)
  const capture = new LiteralCapture()
  const digestOnly = await pass(path, (sql, _s, end) => { if (!end) { capture.reset(); digestOf(sql, capture); capture.pattern() } })
  process.stdout.write(JSON.stringify({ statements: linter.statements, secs: lint.secs, peakRss: lint.peak, digests: r.digests.length, readSecs: readOnly.secs, digestSecs: digestOnly.secs }) + '\n')
}

function cold(count: number): void {
  const sqls = Array.from({ length: count }, (_, k) => `SELECT c${k}, status FROM orders WHERE user_id = ${k} AND merchant_id = 7 ORDER BY created_at DESC LIMIT 20`)
  // warm both paths on other statements, so neither pays the JIT alone
  const warm = new SqlLinter(layout)
  for (let k = 0; k < 500; k++) { warm.add(`SELECT w${k} FROM orders WHERE user_id = ${k}`); parseStatement(`SELECT v${k} FROM orders WHERE user_id = ${k}`) }
  let t0 = process.hrtime.bigint()
  for (const s of sqls) parseStatement(s)
  const parseSecs = Number(process.hrtime.bigint() - t0) / 1e9
  const linter = new SqlLinter(layout)
  t0 = process.hrtime.bigint()
  for (const s of sqls) linter.add(s)
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  if (linter.report().digests.length !== count) throw new Error('cold path: expected one digest per statement')
  const rate = count / secs
  const parseRate = count / parseSecs
  console.log(`cold path (every statement a distinct digest): ${count} statements in ${secs.toFixed(2)} s = ${Math.round(rate)}/s (${(rate / COLD_GOAL).toFixed(2)}x the 20k/s goal); the parser alone on the same statements: ${Math.round(parseRate)}/s, so lint runs at ${(rate / parseRate).toFixed(2)}x the parser`)
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv[0] === '--child') return child(argv[1]!)
  const arg = (name: string, def: number): number => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : def)
  const big = arg('--statements', 1_000_000)
  const coldCount = arg('--cold', 20_000)
  console.log(`shardctl sql lint, general log, node ${process.version}, ${cpus().length} cores, load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  const dir = mkdtempSync(join(tmpdir(), 'shardkit-bench-sql-'))
  try {
    const rows: { statements: number; bytes: number; secs: number; peakRss: number; digests: number; readSecs: number; digestSecs: number }[] = []
    for (const count of [Math.floor(big / 4), big]) {
      const path = join(dir, `general-${count}.log`)
      await writeSyntheticGeneralLog(path, count, 1)
      const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', path], { encoding: 'utf8', maxBuffer: 1 << 20 })
      rows.push({ ...JSON.parse(out.trim().split('\n').pop()!), bytes: statSync(path).size })
      rmSync(path)
    }
    console.log('| statements | log MB | lint s | lint statements/s | vs target 50k/s | read-only statements/s | read+digest statements/s | lint / read-only | peak RSS MB | digests |')
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of rows) {
      const rate = r.statements / r.secs
      console.log(`| ${r.statements} | ${(r.bytes / 1e6).toFixed(1)} | ${r.secs.toFixed(2)} | ${Math.round(rate)} | ${(rate / TARGET).toFixed(2)}x | ${Math.round(r.statements / r.readSecs)} | ${Math.round(r.statements / r.digestSecs)} | ${(r.readSecs / r.secs).toFixed(2)} | ${(r.peakRss / 1e6).toFixed(0)} | ${r.digests} |`)
    }
    console.log(`peak RSS ratio (large/small log, ${(rows[1]!.bytes / rows[0]!.bytes).toFixed(1)}x the bytes): ${(rows[1]!.peakRss / rows[0]!.peakRss).toFixed(2)}`)
    cold(coldCount)
    console.log(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; no database is involved: lint reads the log file only`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
