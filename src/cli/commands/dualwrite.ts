/**
 * `shardctl dualwrite status [--json]`: journal depth and oldest entry age per
 * primary database. `shardctl dualwrite drain [--json]`: one replay pass over
 * every journal (each entry tried once, backoff ignored); exit 1 when entries
 * are left because a secondary still fails. Ctrl-C stops after the order in hand.
 */
import type { Command } from 'commander'
import { drainJournal, readJournalStatus } from '../../dualwrite/journal.js'
import { ShardkitError } from '../../errors.js'
import { intOption, withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'
import { age } from '../render/age.js'

export function registerDualwriteCommands(program: Command, io: CliIO): void {
  const dw = program.command('dualwrite').description('show and replay the dual-write journal (secondary writes not yet applied)')

  dw.command('status')
    .description('journal depth and oldest entry age per primary database')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const status = await withRuntime(io, cmd, (rt) => readJournalStatus(rt))
      const total = status.reduce((n, s) => n + s.depth, 0)
      // A primary that could not be read makes the total a lower bound: say so in the exit code too.
      const unread = status.filter((s) => s.error && s.error !== 'NOT_PROVISIONED').map((s) => s.primary)
      const incomplete = () => {
        if (unread.length > 0) throw new ShardkitError('SHARD_FAILED', `could not read the journal on ${unread.join(', ')}: the total is incomplete; bring the host back and ask again`, { unreachable: unread })
      }
      if (opts.json) {
        printJson(io, { total, complete: unread.length === 0, primaries: status })
        return incomplete()
      }
      const w = Math.max(7, ...status.map((s) => s.primary.length))
      printLine(io, `${'primary'.padEnd(w)}  ${'side'.padEnd(6)}  ${'depth'.padStart(8)}  oldest`)
      for (const s of status) {
        const note = s.error === 'NOT_PROVISIONED' ? '  (no journal table: run shardctl provision)' : s.error ? `  (unreachable: ${s.error})` : ''
        printLine(io, `${s.primary.padEnd(w)}  ${s.side.padEnd(6)}  ${String(s.depth).padStart(8)}  ${age(s.oldestAgeMs)}${note}`)
      }
      printLine(io, `total ${total}${unread.length ? ' (incomplete)' : ''}`)
      incomplete()
    })

  dw.command('drain')
    .description('replay every journal entry once: copy the primary row to the secondaries (idempotent)')
    .option('--timeout-ms <ms>', 'bound on each secondary write', '2000')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean; timeoutMs?: string }, cmd: Command) => {
      const timeoutMs = intOption('--timeout-ms', opts.timeoutMs, { min: 1, max: 60_000 })
      const controller = new AbortController()
      const onSigint = () => controller.abort()
      process.once('SIGINT', onSigint)
      try {
        const r = await withRuntime(io, cmd, (rt) => drainJournal(rt, { signal: controller.signal, logger: io.logger, ...(timeoutMs !== undefined ? { secondaryTimeoutMs: timeoutMs } : {}) }))
        if (opts.json) printJson(io, r)
        else {
          printLine(io, `replayed ${r.replayed}, failed ${r.failed}, remaining ${r.remaining}`)
          if (r.unreachable.length > 0) printLine(io, `unreachable primaries: ${r.unreachable.join(', ')}`)
        }
        if (r.failed > 0 || r.unreachable.length > 0) {
          throw new ShardkitError('SHARD_FAILED', `${r.failed} journal entries could not be replayed${r.unreachable.length ? ` and ${r.unreachable.length} primaries were unreachable` : ''}; bring the hosts back (see the log for which) and run drain again`, {
            failed: r.failed,
            unreachable: r.unreachable,
          })
        }
      } finally {
        process.removeListener('SIGINT', onSigint)
      }
    })
}
