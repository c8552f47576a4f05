/**
 * `shardctl backfill`: copy legacy into both dimensions under live writes.
 * SIGINT/SIGTERM stop at a checkpoint (exit 130); the same command resumes.
 */
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { runBackfill, type BackfillResult } from '../../backfill/index.js'
import { assertBackfillAllowed } from '../../cutover/guards.js'
import type { Dimension } from '../../router/shard-function.js'
import { intOption, withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'
import { createProgress } from '../render/progress.js'
import { startCliJob, typed } from '../job-run.js'

export function dimensionsOption(value: string | undefined): Dimension[] {
  if (value === undefined || value === 'all') return ['user', 'merchant']
  if (value === 'user' || value === 'merchant') return [value]
  throw new ShardkitError('USAGE', `--dimension must be user, merchant or all (got "${value}")`, { argument: '--dimension' })
}

interface BackfillFlags {
  dimension?: string
  concurrency?: string
  chunkSize?: string
  maxRowsPerSecond?: string
  restart?: boolean
  force?: boolean
  reason?: string
  json?: boolean
}

export function registerBackfillCommands(program: Command, io: CliIO): void {
  program
    .command('backfill')
    .description('copy legacy rows into the shards of both dimensions (keyset chunks, checkpoints, resumable)')
    .option('--dimension <d>', 'user, merchant or all', 'all')
    .option('--concurrency <n>', 'parallel shard writes per chunk', '4')
    .option('--chunk-size <n|auto>', 'rows per chunk, or auto to tune toward 500 ms per chunk', 'auto')
    .option('--max-rows-per-second <n>', 'throttle')
    .option('--restart', 'start over instead of resuming from the checkpoint')
    .option('--force', 'run even if not every instance has acknowledged dual-write')
    .option('--reason <text>', 'why --force was needed (required with --force)')
    .option('--json', 'print the summary as JSON')
    .action(async (f: BackfillFlags, cmd: Command) => {
      const dimensions = dimensionsOption(f.dimension)
      const concurrency = intOption('--concurrency', f.concurrency, { min: 1, max: 64 })
      const chunkSize = f.chunkSize === undefined || f.chunkSize === 'auto' ? 'auto' : intOption('--chunk-size', f.chunkSize, { min: 1, max: 100_000 })!
      const maxRowsPerSecond = intOption('--max-rows-per-second', f.maxRowsPerSecond, { min: 1 })
      if (f.force && !f.reason) throw new ShardkitError('USAGE', '--force needs --reason "<why>"; it is recorded', { argument: '--reason' })
      const ac = new AbortController()
      const onSignal = () => ac.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      let result: BackfillResult
      try {
        result = await withRuntime(io, cmd, async (rt) => {
          if (f.force) io.logger.warn({ reason: f.reason }, 'backfill forced past the dual-write acknowledgement check')
          else await assertBackfillAllowed(rt)
          const progress = createProgress(io, 'backfill')
          // Job control: `shardctl backfill pause|resume|throttle` from any machine acts at the next chunk.
          const job = await startCliJob(io, rt, 'backfill', {
            scope: dimensions.join('+'),
            signal: ac.signal,
            initial: { maxRowsPerSecond: typed(cmd, 'maxRowsPerSecond', maxRowsPerSecond), chunkSize: typed(cmd, 'chunkSize', chunkSize === 'auto' ? null : chunkSize), concurrency: typed(cmd, 'concurrency', concurrency) },
          })
          let last: { rowsDone: number; rowsTotal: number; chunks: number; chunkSize: number; concurrency: number } | undefined
          try {
            const r = await runBackfill(rt, {
              dimensions,
              concurrency,
              chunkSize,
              maxRowsPerSecond,
              restart: f.restart,
              signal: ac.signal,
              ...(job.control ? { control: job.control } : {}),
              onProgress: (p) => {
                last = { rowsDone: p.rowsDone, rowsTotal: p.rowsTotal, chunks: (last?.chunks ?? 0) + 1, chunkSize: p.chunkSize, concurrency: concurrency ?? 4 }
                progress.update(p.rowsDone, p.rowsTotal, { rowsPerSecond: Math.round(p.rowsPerSecond), chunkSize: p.chunkSize })
              },
            })
            const done = r.completed ? { rowsDone: last?.rowsDone ?? r.rowsTotal, rowsTotal: r.rowsTotal, chunks: r.chunks, chunkSize: last?.chunkSize ?? 0, concurrency: concurrency ?? 4 } : last
            await job.control?.finish(r.completed ? 'finished' : 'stopped', done)
            if (r.completed) await job.notifier.send('backfill-finished', `backfill finished: ${r.rowsCopied} rows copied into ${r.dimensions.join(' and ')} in ${r.seconds.toFixed(0)} s`, { rowsCopied: r.rowsCopied, rowsTotal: r.rowsTotal, dimensions: r.dimensions, seconds: Math.round(r.seconds) })
            return r
          } catch (err) {
            await job.failed(err, last)
            throw err
          } finally {
            progress.stop()
          }
        })
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
      if (f.json) printJson(io, { ...result, rowsPerSecond: Math.round(result.rowsPerSecond), seconds: Number(result.seconds.toFixed(2)) })
      else
        printLine(
          io,
          `backfill ${result.completed ? 'complete' : 'stopped at a checkpoint'}: ${result.rowsCopied} rows copied in ${result.seconds.toFixed(1)} s (${Math.round(result.rowsPerSecond)} rows/s) into ${result.dimensions.join(' and ')}; legacy holds ${result.rowsTotal}`,
        )
      if (!f.json && result.unroutable.rows > 0) printLine(io, unroutableLine(result))
      if (!result.completed) throw new ShardkitError('ABORTED', 'backfill stopped at a checkpoint; run the same command to resume', {})
    })
}

/** What the operator must know of rows no key routes: how many, which, and what to do. */
export function unroutableLine(result: BackfillResult): string {
  const shown = result.unroutable.listed.slice(0, 20).map((u) => `${u.key} (${u.column} ${u.reason})`)
  const more = result.unroutable.rows - shown.length
  return `${result.unroutable.rows} rows were not copied because a key has no shard: ${shown.join(', ')}${more > 0 ? ` and ${more} more (see --json)` : ''}; give them a non-negative key in legacy (or delete them), then run \`shardctl backfill --restart\` (it copies them and records their routes; rows already copied are left as they are). Verify reports them as "unroutable" until then, which keeps the cutover from advancing.`
}
