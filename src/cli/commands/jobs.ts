/**
 * `shardctl backfill|verify pause|resume|throttle`: change a running job
 * from any machine. The settings are written to the control database; the
 * job applies them at its next chunk (within a second) and logs old -> new.
 * The answer names each field that moved; `--json` prints
 * `{ job, changed: [{ field, from, to }], settings }`. A value that is empty
 * or out of range is refused naming its flag (exit 2), and nothing is written.
 */
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { defaultActor } from '../../cutover/switch-store.js'
import { changeJobSettings, parseSettingValue, type JobKind, type JobSettings, type SettingsChange, type TunableField } from '../../jobs/settings.js'
import { withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'

function describe(s: JobSettings): string {
  return `paused=${s.paused} max-rows-per-second=${s.maxRowsPerSecond ?? 'off'} chunk-size=${s.chunkSize ?? 'default'} concurrency=${s.concurrency ?? 'default'} (revision ${s.revision})`
}

async function apply(io: CliIO, cmd: Command, job: JobKind, change: SettingsChange, json: boolean | undefined): Promise<void> {
  const r = await withRuntime(io, cmd, (rt) => changeJobSettings(rt, job, change, defaultActor(io.env)))
  for (const c of r.changed) io.logger.info({ job, setting: c.field, from: c.from, to: c.to }, `${job}: ${c.field} ${String(c.from)} -> ${String(c.to)}`)
  if (json) {
    printJson(io, { job, changed: r.changed, settings: r.after })
    return
  }
  if (r.changed.length === 0) printLine(io, `${job}: nothing changed; ${describe(r.after)}`)
  for (const c of r.changed) printLine(io, `${job}: ${c.field} ${String(c.from ?? 'default')} -> ${String(c.to ?? 'default')}`)
  printLine(io, `${job}: ${describe(r.after)}; a running ${job} applies it at its next chunk`)
}

interface ThrottleFlags {
  maxRowsPerSecond?: string
  chunkSize?: string
  concurrency?: string
  json?: boolean
}

/** Adds pause, resume and throttle under the existing `backfill` and `verify` commands. */
export function registerJobControlCommands(program: Command, io: CliIO): void {
  for (const job of ['backfill', 'verify'] as const) {
    const parent = program.commands.find((c) => c.name() === job)
    if (!parent) throw new ShardkitError('INTERNAL', `the ${job} command must be registered before its job-control verbs`)
    // commander hands `backfill throttle --chunk-size 500 --json` to the parent's options of the same
    // names (the root splits the arguments before the verb sees them): a flag given there is the verb's.
    const flag = <T>(own: T | undefined, name: string): T | undefined => own ?? (parent.getOptionValueSource(name) === 'cli' ? (parent.opts()[name] as T) : undefined)
    parent
      .command('pause')
      .description(`pause the running ${job} at its next chunk (it commits the chunk in flight, then holds no lock); survives a restart`)
      .option('--json', 'print JSON')
      .action((f: { json?: boolean }, cmd: Command) => apply(io, cmd, job, { paused: true }, flag(f.json, 'json')))
    parent
      .command('resume')
      .description(`resume a paused ${job}`)
      .option('--json', 'print JSON')
      .action((f: { json?: boolean }, cmd: Command) => apply(io, cmd, job, { paused: false }, flag(f.json, 'json')))
    parent
      .command('throttle')
      .description(`change the running ${job}'s rows/s limit, chunk size or concurrency (applied at its next chunk)`)
      .option('--max-rows-per-second <n|off>', 'rows per second, or off')
      .option('--chunk-size <n|default>', job === 'backfill' ? 'rows per chunk, or auto' : 'legacy rows per checksum chunk, or default')
      .option('--concurrency <n|default>', job === 'backfill' ? 'parallel shard writes per chunk' : 'checksum queries in flight')
      .option('--json', 'print JSON')
      .action((f: ThrottleFlags, cmd: Command) => {
        const change: { -readonly [K in TunableField]?: number | null } = {}
        for (const field of ['maxRowsPerSecond', 'chunkSize', 'concurrency'] as const) {
          const v = flag(f[field], field)
          if (v !== undefined) change[field] = parseSettingValue(job, field, v)
        }
        if (Object.keys(change).length === 0) throw new ShardkitError('USAGE', `${job} throttle needs at least one of --max-rows-per-second, --chunk-size, --concurrency`, { argument: '--max-rows-per-second' })
        return apply(io, cmd, job, change, flag(f.json, 'json'))
      })
  }
}
