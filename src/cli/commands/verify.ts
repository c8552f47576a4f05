/**
 * `shardctl verify`: prove legacy and both dimensions hold the same orders.
 * Exit 0 clean, 4 when a difference remains after the re-check rounds.
 */
import { writeFileSync } from 'node:fs'
import type { RowDataPacket } from 'mysql2/promise'
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { runVerify, runVerifySince, recordVerifyRun, type VerifyResult } from '../../verify/index.js'
import { controlNow } from '../../runtime/db-clock.js'
import { readStageState } from '../../cutover/switch-store.js'
import { qualified } from '../../runtime/mysql.js'
import type { Runtime } from '../../runtime/runtime.js'
import { intOption, withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'
import { createProgress } from '../render/progress.js'
import { startCliJob, typed } from '../job-run.js'

/**
 * `--since`: an ISO 8601 time (`2026-11-25T03:00:00Z`) or a duration before now (`90s`, `15m`, `2h`, `1d`).
 * @throws ShardkitError `USAGE` naming `--since`
 */
export function parseSince(value: string, now = Date.now()): Date {
  const rel = /^(\d{1,6})(s|m|h|d)$/.exec(value)
  if (rel) return new Date(now - Number(rel[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'])
  const t = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/.test(value) ? Date.parse(value.replace(' ', 'T')) : NaN
  if (Number.isNaN(t)) throw new ShardkitError('USAGE', `--since must be an ISO 8601 time such as 2026-11-25T03:00:00Z, or a duration before now such as 15m, 2h or 1d (got "${value}")`, { argument: '--since' })
  if (t > now) throw new ShardkitError('USAGE', `--since is in the future (${new Date(t).toISOString()}); give a time before now`, { argument: '--since' })
  return new Date(t)
}

async function estimateRows(rt: Runtime): Promise<number> {
  const { database, table } = rt.config.legacy
  const [[r]] = await rt.legacy().query<RowDataPacket[]>('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, table])
  return Number(r?.n ?? 0)
}

/** Differences per dimension shard (`{ user: { "7": 2 }, merchant: {...} }`), for the status heatmap. */
function differencesByShard(ds: VerifyResult['differences'], pairs: VerifyResult['pairs']): Record<'user' | 'merchant', Record<string, number>> {
  const out: Record<'user' | 'merchant', Record<string, number>> = { user: {}, merchant: {} }
  // With legacy compared, a user-merchant difference only repeats a legacy-user or legacy-merchant one.
  const legacyCompared = pairs.some((p) => p !== 'user-merchant')
  for (const x of ds) {
    if (x.shard === undefined || (legacyCompared && x.pair === 'user-merchant')) continue
    const dim = x.pair === 'legacy-user' ? 'user' : 'merchant'
    out[dim][String(x.shard)] = (out[dim][String(x.shard)] ?? 0) + 1
  }
  return out
}

interface VerifyFlags {
  dimension?: string
  since?: string
  rounds?: string
  chunkSize?: string
  concurrency?: string
  report?: string
  json?: boolean
}

export function registerVerifyCommands(program: Command, io: CliIO): void {
  program
    .command('verify')
    .description('compare legacy, the user dimension and the merchant dimension, every row (server-side chunk checksums); exit 4 on a difference')
    .option('--dimension <d>', 'user, merchant or all', 'all')
    .option('--since <time>', 'only rows changed at or after this time: ISO 8601, or a duration before now such as 15m')
    .option('--rounds <n>', 're-check rounds before a difference is reported', '3')
    .option('--chunk-size <n>', 'legacy rows per checksum chunk', '100000')
    .option('--concurrency <n>', 'checksum queries in flight at once', '2')
    .option('--report <file>', 'write every differing key to this JSON file (the input of `shardctl repair`)')
    .option('--json', 'print the result as JSON')
    .action(async (f: VerifyFlags, cmd: Command) => {
      const d = f.dimension ?? 'all'
      if (d !== 'user' && d !== 'merchant' && d !== 'all') throw new ShardkitError('USAGE', `--dimension must be user, merchant or all (got "${d}")`, { argument: '--dimension' })
      const rounds = intOption('--rounds', f.rounds, { min: 0, max: 20 })
      const chunkSize = intOption('--chunk-size', f.chunkSize, { min: 100, max: 10_000_000 })
      const concurrency = intOption('--concurrency', f.concurrency, { min: 1, max: 32 })
      const since = f.since === undefined ? undefined : parseSince(f.since)
      // SIGINT/SIGTERM stop between chunks (exit 130); nothing is written but the run record.
      const ac = new AbortController()
      const onSignal = () => ac.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const r = await withRuntime(io, cmd, async (rt) => {
        // From `shards` on legacy is no longer written: the dimensions are compared with each other.
        const stage = (await readStageState(rt)).stage
        // The guards order runs by the control database's clock, never this machine's.
        const dbStartedAt = await controlNow(rt)
        const legacyRetired = stage === 'shards'
        const progress = createProgress(io, since ? 'verify --since' : 'verify')
        const total = since || legacyRetired ? 0 : await estimateRows(rt)
        let result: VerifyResult
        // Job control (`shardctl verify pause|resume|throttle`) acts between the chunks of a full verify.
        const job = await startCliJob(io, rt, 'verify', { scope: since ? 'since' : d, signal: ac.signal, initial: { chunkSize: typed(cmd, 'chunkSize', chunkSize), concurrency: typed(cmd, 'concurrency', concurrency) } })
        try {
          const common = { dimension: d as 'user' | 'merchant' | 'all', rounds, legacyRetired, signal: ac.signal, onProgress: (p: { rowsCompared: number; chunksNarrowed: number }) => progress.update(p.rowsCompared, Math.max(total, p.rowsCompared), { chunksNarrowed: p.chunksNarrowed }) }
          result = since ? await runVerifySince(rt, since, common) : await runVerify(rt, { ...common, chunkSize, concurrency, ...(job.control ? { control: job.control } : {}) })
          await job.control?.finish('finished', { rowsDone: result.keysCompared, rowsTotal: result.keysCompared, chunks: result.chunks, chunkSize: chunkSize ?? 100_000, concurrency: concurrency ?? 2 })
        } catch (err) {
          await job.failed(err)
          if (ac.signal.aborted) throw new ShardkitError('ABORTED', 'verify stopped by a signal before it finished; nothing was reported: run it again', {}, { cause: err })
          throw err
        } finally {
          progress.stop()
          process.off('SIGINT', onSignal)
          process.off('SIGTERM', onSignal)
        }
        const differences = result.differences.length + result.overflow
        const runId = await recordVerifyRun(rt, {
          dimension: d,
          since: since ? since.toISOString() : null,
          startedAt: dbStartedAt,
          clean: result.clean,
          differences,
          rowsCompared: result.keysCompared,
          summary: { byPair: result.byPair, rowsCompared: result.rowsCompared, overflow: result.overflow, pairs: result.pairs, byShard: differencesByShard(result.differences, result.pairs) },
        })
        if (!result.clean) await job.notifier.send('verify-differences', `verify found ${differences} differing rows (stage ${stage})`, { runId, differences, byPair: result.byPair, stage })
        return { ...result, runId, stage }
      })
      const summary = {
        runId: r.runId,
        clean: r.clean,
        dimension: r.dimension,
        stage: r.stage,
        since: since ? since.toISOString() : null,
        pairs: r.pairs,
        rowsCompared: r.keysCompared,
        rowsBySide: r.rowsCompared,
        differences: r.differences.length + r.overflow,
        byPair: r.byPair,
        sample: r.differences.slice(0, 20),
        journaled: r.journaled?.length ?? 0,
        unroutable: r.unroutable ?? 0,
        chunks: r.chunks,
        chunksNarrowed: r.chunksNarrowed,
        hash: r.hash,
        seconds: Number(r.seconds.toFixed(2)),
        rowsPerSecond: Math.round(r.keysCompared / Math.max(0.001, r.seconds)),
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
      }
      if (f.report) writeFileSync(f.report, JSON.stringify({ ...summary, sample: undefined, differences: r.differences, overflow: r.overflow }, null, 2) + '\n')
      if (f.json) printJson(io, summary)
      else {
        const scope = since ? `rows changed since ${summary.since}` : `${r.keysCompared} keys`
        printLine(io, `verify ${r.clean ? 'clean' : 'FOUND DIFFERENCES'} (${r.pairs.join(', ')}; stage ${r.stage}): ${scope}; ${r.rowsCompared.legacy} legacy, ${r.rowsCompared.user} user-dimension, ${r.rowsCompared.merchant} merchant-dimension rows in ${r.seconds.toFixed(1)} s`)
        for (const [pair, kinds] of Object.entries(r.byPair)) printLine(io, `  ${pair}: ${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}`)
        for (const x of summary.sample) printLine(io, `  ${x.pair} ${x.kind} ${x.key}${x.shard === undefined ? '' : ` (shard ${x.shard})`}`)
        if (summary.unroutable > 0) printLine(io, `  ${summary.unroutable} legacy rows have a user or merchant key that routes nowhere (NULL or negative): no shard holds them, and the cutover cannot advance past them; give them a valid key in legacy (or delete them), then run \`shardctl backfill --restart\` (it copies them and records their routes)`)
        if (summary.journaled > 0) printLine(io, `  ${summary.journaled} of these keys still have dual-write journal entries: run \`shardctl dualwrite drain\`, then verify again`)
        if (summary.differences > summary.sample.length) printLine(io, `  ... ${summary.differences - summary.sample.length} more${f.report ? ` in ${f.report}` : '; pass --report <file> for all of them'}`)
      }
      if (!r.clean) throw new ShardkitError('INCONSISTENT', `verify found ${summary.differences} differing rows; run \`shardctl verify --report <file>\`, then \`shardctl repair --report <file>\``, { differences: summary.differences })
    })
}
