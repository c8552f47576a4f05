/**
 * `shardctl repair --report <file> [--execute]`: print (default) or apply the
 * idempotent statements that make the copies of the reported keys equal to
 * the source of truth for the current stage, then compare those keys again.
 * Exit 0 when applied and clean, 4 when differences remain.
 */
import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { parseReport, runRepair } from '../../verify/index.js'
import { withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'

export function registerRepairCommands(program: Command, io: CliIO): void {
  program
    .command('repair')
    .description('make the copies of the keys in a verify report equal to the source of truth (legacy before write-shards, the user dimension after)')
    .requiredOption('--report <file>', 'the file written by `shardctl verify --report <file>`')
    .option('--execute', 'apply the statements (default: print them and change nothing)')
    .option('--json', 'print a JSON summary instead of the statements')
    .action(async (f: { report: string; execute?: boolean; json?: boolean }, cmd: Command) => {
      let text: string
      try {
        text = readFileSync(f.report, 'utf8')
      } catch (err) {
        throw new ShardkitError('USAGE', `cannot read --report ${f.report} (${(err as NodeJS.ErrnoException).code ?? 'error'}); pass the file written by \`shardctl verify --report <file>\``, { argument: '--report' })
      }
      const { differences, overflow } = parseReport(text, f.report)
      const r = await withRuntime(io, cmd, (rt) =>
        runRepair(rt, differences, {
          execute: f.execute ?? false,
          onStatement: (s, sql) => {
            if (!f.json) printLine(io, `-- ${s.action} ${s.key} in ${s.target}${s.shard === undefined ? '' : ` shard ${s.shard}`}\n${sql}`)
          },
        }),
      )
      if (overflow > 0) io.logger.warn({ overflow }, 'the report was cut at its limit; run verify and repair again after this one')
      if (f.json) printJson(io, { ...r, reportOverflow: overflow, remaining: r.remaining.slice(0, 100) })
      else {
        printLine(io, `-- repair ${r.executed ? 'applied' : 'planned (nothing changed; pass --execute to apply)'}: ${r.keys} keys, ${r.statements} statements; stage ${r.stage}, source of truth: ${r.sourceOfTruth === 'legacy' ? 'legacy' : 'the user dimension'}`)
        if (r.unrepairable.length > 0) printLine(io, `-- cannot repair ${r.unrepairable.length} keys whose id's shard field does not match the user: ${r.unrepairable.slice(0, 10).join(', ')}`)
        for (const f of r.failed.slice(0, 10)) printLine(io, `-- could not write ${f.side} on ${f.host}/${f.database} for ${f.key} (${f.code}); run the repair again once it answers`)
        if (r.executed) printLine(io, r.clean ? '-- those keys are now equal on every side' : `-- ${r.remaining.length} differences remain: ${r.remaining.slice(0, 10).map((d) => `${d.pair} ${d.kind} ${d.key}`).join('; ')}`)
      }
      if (r.executed && !r.clean) throw new ShardkitError('INCONSISTENT', `repair left ${r.remaining.length + r.unrepairable.length} differences${r.failed.length ? ` and ${r.failed.length} copies it could not write` : ''}; run \`shardctl verify --report <file>\` again`, { differences: r.remaining.length + r.unrepairable.length, failedCopies: r.failed.length })
    })
}
