/**
 * `shardctl provision [--dry-run] [--json]`: create shard databases and tables,
 * control tables and per-primary tables. Exit 3 when a table exists with
 * another definition (reported, never altered).
 */
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { provision, type ProvisionReport, type ProvisionTarget } from '../../provision/index.js'
import { withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'

const LABEL: Record<ProvisionTarget, string> = {
  database: 'databases',
  'shard-table': 'shard tables',
  'control-table': 'control tables',
  'primary-table': 'primary tables (journal, fence, outbox)',
  'order-db-table': 'tombstone tables (every database holding order copies)',
}

function counts(items: readonly { kind: ProvisionTarget }[]): string {
  const by = new Map<ProvisionTarget, number>()
  for (const i of items) by.set(i.kind, (by.get(i.kind) ?? 0) + 1)
  return [...by].map(([k, n]) => `${n} ${LABEL[k]}`).join(', ')
}

function render(io: CliIO, r: ProvisionReport): void {
  const existing = (Object.entries(r.existing) as [ProvisionTarget, number][]).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${LABEL[k]}`).join(', ')
  if (r.created.length === 0) printLine(io, `nothing to do: ${existing || 'nothing'} already exist${r.conflicts.length ? ' (but see the conflicts below)' : ''}`)
  else {
    printLine(io, `${r.dryRun ? 'would create' : 'created'}: ${counts(r.created)}`)
    if (existing) printLine(io, `already there: ${existing}`)
    if (r.dryRun) for (const c of r.created) printLine(io, `  ${c.kind.padEnd(13)} ${c.host.padEnd(10)} ${c.database}${c.table ? '.' + c.table : ''}`)
  }
  for (const c of r.conflicts) printLine(io, `CONFLICT ${c.host} ${c.database}.${c.table}: ${c.differences.join('; ')}`)
}

export function registerProvisionCommands(program: Command, io: CliIO): void {
  program
    .command('provision')
    .description('create the shard databases, 240 shard tables, control and per-primary tables (idempotent)')
    .option('--dry-run', 'print what would be created, create nothing')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const report = await withRuntime(io, cmd, (rt) => provision(rt, { dryRun: opts.dryRun }))
      if (opts.json) printJson(io, report)
      else render(io, report)
      if (report.conflicts.length > 0) {
        throw new ShardkitError('PROVISION_CONFLICT', `${report.conflicts.length} table(s) exist with a different definition; they were left untouched: fix or rename them, then run provision again`, {
          conflicts: report.conflicts.length,
        })
      }
    })
}
