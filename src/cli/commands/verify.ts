/**
 * `shardctl verify`: prove legacy and both dimensions hold the same orders.
 * Exit 0 clean, 4 when a difference remains after the re-check rounds.
 */
import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { runVerify, recordVerifyRun } from '../../verify/index.js'
import { readStageState } from '../../cutover/switch-store.js'
import { intOption, withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'

export function registerVerifyCommands(program: Command, io: CliIO): void {
  program
    .command('verify')
    .description('compare legacy, the user dimension and the merchant dimension row by row; exit 4 on a difference')
    .option('--dimension <d>', 'user, merchant or all', 'all')
    .option('--rounds <n>', 're-check rounds before a difference is reported', '3')
    .option('--report <file>', 'write every differing key to this JSON file')
    .option('--json', 'print the result as JSON')
    .action(async (f: { dimension?: string; rounds?: string; report?: string; json?: boolean }, cmd: Command) => {
      const d = f.dimension ?? 'all'
      if (d !== 'user' && d !== 'merchant' && d !== 'all') throw new ShardkitError('USAGE', `--dimension must be user, merchant or all (got "${d}")`, { argument: '--dimension' })
      const rounds = intOption('--rounds', f.rounds, { min: 0, max: 20 })
      const r = await withRuntime(io, cmd, async (rt) => {
        // From `shards` on legacy is no longer written: the dimensions are compared with each other.
        const stage = (await readStageState(rt)).stage
        const result = await runVerify(rt, { dimension: d, rounds, legacyRetired: stage === 'shards', onProgress: (p) => io.logger.info({ progress: 'verify', rowsCompared: p.rowsCompared }, 'verify progress') })
        const total = result.differences.length + result.overflow
        const runId = await recordVerifyRun(rt, {
          dimension: d,
          since: null,
          startedAt: result.startedAt,
          finishedAt: result.finishedAt,
          clean: result.clean,
          differences: total,
          rowsCompared: result.keysCompared,
          summary: { byPair: result.byPair, rowsCompared: result.rowsCompared, overflow: result.overflow },
        })
        return { ...result, runId, stage }
      })
      const summary = {
        runId: r.runId,
        clean: r.clean,
        dimension: r.dimension,
        stage: r.stage,
        pairs: r.pairs,
        rowsCompared: r.keysCompared,
        rowsBySide: r.rowsCompared,
        differences: r.differences.length + r.overflow,
        byPair: r.byPair,
        sample: r.differences.slice(0, 20),
        seconds: Number(r.seconds.toFixed(2)),
        rowsPerSecond: Math.round(r.keysCompared / Math.max(0.001, r.seconds)),
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
      }
      if (f.report) writeFileSync(f.report, JSON.stringify({ ...summary, sample: undefined, differences: r.differences, overflow: r.overflow }, null, 2) + '\n')
      if (f.json) printJson(io, summary)
      else {
        printLine(io, `verify ${r.clean ? 'clean' : 'FOUND DIFFERENCES'} (${r.pairs.join(', ')}; stage ${r.stage}): ${r.keysCompared} keys; ${r.rowsCompared.legacy} legacy, ${r.rowsCompared.user} user-dimension, ${r.rowsCompared.merchant} merchant-dimension rows in ${r.seconds.toFixed(1)} s`)
        for (const [pair, kinds] of Object.entries(r.byPair)) printLine(io, `  ${pair}: ${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}`)
        for (const x of summary.sample) printLine(io, `  ${x.pair} ${x.kind} ${x.key}${x.shard === undefined ? '' : ` (shard ${x.shard})`}`)
        if (summary.differences > summary.sample.length) printLine(io, `  ... ${summary.differences - summary.sample.length} more${f.report ? ` in ${f.report}` : '; pass --report <file> for all of them'}`)
      }
      if (!r.clean) throw new ShardkitError('INCONSISTENT', `verify found ${summary.differences} differing rows; run \`shardctl repair --report <file>\` then \`shardctl verify\``, { differences: summary.differences })
    })
}
