/**
 * `shardctl cutover status|advance|rollback|history`: show the stage, move it
 * one step (or one read-ramp step at read-shards) forward or back, and list
 * every move. Exit codes: 0 done, 2 bad arguments, 3 refused by guards or
 * aborted (every reason printed), 5 another move holds the run lock.
 * `--dry-run` prints the steps and runs the same checks, and exits as the
 * real move would (3 when it would be refused). An advance into
 * write-shards or shards waits for a person (src/cli/confirm.ts): the plan,
 * then the target stage typed on a terminal; `--yes` for automation; no
 * terminal and no `--yes` exits 3.
 */
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { moveStage, type MoveResult } from '../../cutover/steps.js'
import { readCutoverStatus } from '../../cutover/status.js'
import { defaultActor, readHistory } from '../../cutover/switch-store.js'
import type { StageState } from '../../cutover/stages.js'
import type { MoveKind } from '../../cutover/transitions.js'
import { intOption, withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'
import { confirmPointOfNoReturn, notifyMove, readStageVersion } from '../confirm.js'

interface MoveFlags {
  percent?: string
  reason?: string
  force?: boolean
  dryRun?: boolean
  json?: boolean
  ackTimeoutMs?: string
  drainTimeoutMs?: string
  fenceBudgetMs?: string
  attempts?: string
  yes?: boolean
}

function label(s: StageState | null): string {
  if (!s) return '-'
  return `${s.stage}${s.stage === 'read-shards' ? ` ${s.readPercent}%` : ''} (v${s.version})`
}

/** Renders a move (or its plan) as lines; exported for the confirmation prompt. */
export function renderMove(io: CliIO, r: MoveResult): void {
  const target = r.target ? `${r.target.stage}${r.target.stage === 'read-shards' ? ` ${r.target.readPercent}%` : ''}` : '-'
  printLine(io, `${r.kind} ${label(r.from)} -> ${r.outcome === 'done' ? label(r.to) : target}: ${r.outcome}${r.fenceMs !== null ? ` (fence ${Math.round(r.fenceMs)} ms)` : ''}`)
  if (r.outcome === 'aborted' || r.outcome === 'recovered') printLine(io, `restored: ${label(r.to)}`)
  for (const g of r.guards) printLine(io, `  guard ${g.guard}: ${g.ok ? 'ok' : `REFUSED: ${g.reason}`}`)
  if (r.forcedGuards.length) printLine(io, `  forced (recorded): ${r.forcedGuards.join(', ')}`)
  if (r.outcome !== 'refused') for (const s of r.steps) printLine(io, `  ${r.outcome === 'dry-run' ? 'would' : s.status.padEnd(7)} ${s.step}: ${s.description}${s.ms !== undefined ? ` [${s.ms} ms]` : ''}${s.detail ? ` (${s.detail})` : ''}`)
  if (r.pointOfNoReturn) printLine(io, `  POINT OF NO RETURN: ${r.pointOfNoReturn}`)
  for (const reason of r.reasons) printLine(io, `  reason: ${reason}`)
  if (r.attempts > 1) printLine(io, `  attempts: ${r.attempts} (each aborted attempt reopened writes at the old stage)`)
  for (const w of r.warnings) printLine(io, `  WARNING: ${w}`)
}

function exitFor(r: MoveResult): void {
  if (r.outcome === 'done' || (r.outcome === 'dry-run' && r.reasons.length === 0)) return
  const list = r.reasons.join('; ')
  if (r.outcome === 'aborted' || r.outcome === 'recovered') throw new ShardkitError('CUTOVER_ABORTED', `${r.kind} aborted, the stage is back at ${label(r.to)}: ${list}`, { outcome: r.outcome })
  throw new ShardkitError('CUTOVER_GUARD_FAILED', `${r.kind}${r.outcome === 'dry-run' ? ' (dry run)' : ''} refused: ${list}`, { outcome: r.outcome, guards: r.guards.filter((g) => !g.ok).map((g) => g.guard) })
}

function moveCommand(io: CliIO, parent: Command, kind: MoveKind, description: string): void {
  parent
    .command(kind)
    .description(description)
    .option('--percent <n>', 'at read-shards: the share of users whose reads go to the shards (1..100)')
    .option('--reason <text>', 'why (recorded in the audit log; required with --force)')
    .option('--force', 'override failing guards (recorded)')
    .option('--dry-run', 'print the steps and run the checks; change nothing')
    .option('--ack-timeout-ms <ms>', 'how long every live instance gets to acknowledge before the switch aborts', '2000')
    .option('--drain-timeout-ms <ms>', 'bound on draining the journal inside the fence', '5000')
    .option('--fence-budget-ms <ms>', 'longest the fences may hold writes in one attempt; past it the attempt aborts, reopening writes at the old stage', '1000')
    .option('--attempts <n>', 'attempts when one aborts on its fence budget or a journal that did not drain', '3')
    .option('--json', 'print JSON')
    .option('--yes', 'for automation: skip the typed confirmation a move into write-shards or shards asks for on a terminal')
    .action(async (opts: MoveFlags, cmd: Command) => {
      const percent = intOption('--percent', opts.percent, { min: 1, max: 100 })
      const ackTimeoutMs = intOption('--ack-timeout-ms', opts.ackTimeoutMs, { min: 10, max: 600_000 })
      const drainTimeoutMs = intOption('--drain-timeout-ms', opts.drainTimeoutMs, { min: 10, max: 3_600_000 })
      const fenceBudgetMs = intOption('--fence-budget-ms', opts.fenceBudgetMs, { min: 50, max: 600_000 })
      const attempts = intOption('--attempts', opts.attempts, { min: 1, max: 20 })
      if (opts.force && !opts.reason?.trim()) throw new ShardkitError('USAGE', '--force needs --reason "..." (it is recorded in the audit log)', { argument: '--reason' })
      if (opts.reason !== undefined && opts.reason.length > 512) throw new ShardkitError('USAGE', '--reason must be at most 512 characters', { argument: '--reason' })
      const controller = new AbortController()
      const onSigint = () => controller.abort()
      process.once('SIGINT', onSigint)
      try {
        const r = await withRuntime(io, cmd, async (rt) => {
          const move = {
            kind,
            ...(percent !== undefined ? { percent } : {}),
            ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
            force: Boolean(opts.force),
            dryRun: Boolean(opts.dryRun),
            actor: defaultActor(io.env),
            ...(ackTimeoutMs !== undefined ? { ackTimeoutMs } : {}),
            ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}),
            ...(fenceBudgetMs !== undefined ? { fenceBudgetMs } : {}),
            ...(attempts !== undefined ? { attempts } : {}),
            signal: controller.signal,
          }
          // A point of no return waits for a person: the plan, then the target stage typed (or --yes).
          if (kind === 'advance' && !opts.dryRun && !opts.yes) {
            const plan = await moveStage(rt, { ...move, dryRun: true })
            const confirmed = await confirmPointOfNoReturn(io, plan, Boolean(opts.force), renderMove)
            if (confirmed && (await readStageVersion(rt)) !== plan.from.version) {
              throw new ShardkitError('PRECONDITION_FAILED', `the stage moved while you confirmed (it was ${plan.from.stage} v${plan.from.version}); nothing changed: check \`shardctl status\` and run the move again`, { stage: plan.from.stage })
            }
          }
          const result = await moveStage(rt, move)
          if (!opts.dryRun) await notifyMove(io, rt, result, move.actor)
          return result
        })
        if (opts.json) printJson(io, r)
        else renderMove(io, r)
        exitFor(r)
      } finally {
        process.removeListener('SIGINT', onSigint)
      }
    })
}

/** Registers `shardctl cutover ...`. */
export function registerCutoverCommands(program: Command, io: CliIO): void {
  const c = program.command('cutover').description('move reads, then writes, to the shards: one stage at a time, fenced, audited, reversible')

  c.command('status')
    .description('stage, read percentage, live instances and their acknowledged versions, fences, journal depth, last verify')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const s = await withRuntime(io, cmd, (rt) => readCutoverStatus(rt))
      if (opts.json) {
        printJson(io, s)
        return
      }
      printLine(io, `stage        ${label(s.state)} since ${s.state.changedAt} (from ${s.source}${s.redisReachable ? '' : ', REDIS UNREACHABLE'})`)
      if (s.stageEnteredAt) printLine(io, `entered      ${s.state.stage} at ${s.stageEnteredAt} (a verify must start after this to advance)`)
      printLine(io, `read shards  ${s.state.readPercent}%`)
      if (!s.instances.ok) printLine(io, `instances    unknown (${s.instances.error})`)
      else {
        printLine(io, `instances    ${s.instances.value.length} live`)
        for (const a of s.instances.value) printLine(io, `  ${a.instanceId}  v${a.version}${a.version === s.state.version ? ' (acknowledged)' : ' (BEHIND)'}  ${a.host ?? '-'} pid ${a.pid ?? '-'}`)
      }
      printLine(io, `fences       ${s.fences.map((f) => `${f.primary}: ${f.state}${f.version === null ? '' : ` v${f.version}`}`).join(', ')}`)
      printLine(io, `journal      ${s.journal.ok ? `${s.journal.value.total} entries` : `unknown (${s.journal.error})`}`)
      const v = s.lastVerify
      printLine(io, `last verify  ${!v.ok ? `unknown (${v.error})` : v.value === null ? 'none' : `${v.value.runId} ${v.value.clean ? 'clean' : `${v.value.differences} differences`} (${v.value.dimension}, started ${v.value.startedAt})`}`)
      if (s.lock) printLine(io, `run lock     held by ${s.lock.actor} on ${s.lock.host} pid ${s.lock.pid} since ${s.lock.since}`)
      if (s.problem) printLine(io, `PROBLEM      ${s.problem}`)
    })

  moveCommand(io, c, 'advance', 'move one stage forward (at read-shards, --percent ramps the reads up)')
  moveCommand(io, c, 'rollback', 'move one stage back (at read-shards, --percent ramps the reads down)')

  c.command('history')
    .description('every move, refusal and abort, newest first (the audit log)')
    .option('--limit <n>', 'rows', '50')
    .option('--json', 'print JSON')
    .action(async (opts: { limit?: string; json?: boolean }, cmd: Command) => {
      const limit = intOption('--limit', opts.limit, { min: 1, max: 10_000 })
      const rows = await withRuntime(io, cmd, (rt) => readHistory(rt, { limit: limit ?? 50 }))
      if (opts.json) {
        printJson(io, rows)
        return
      }
      for (const e of rows) {
        printLine(io, `${e.at}  ${e.action.padEnd(8)} ${e.outcome.padEnd(7)} ${label(e.from)} -> ${label(e.to)}  by ${e.actor}${e.forced ? `  FORCED(${e.forcedGuards.join(',')})` : ''}${e.fenceMs !== null ? `  fence ${e.fenceMs} ms` : ''}${e.reason ? `  reason: ${e.reason}` : ''}${e.detail ? `  [${e.detail}]` : ''}`)
      }
      if (rows.length === 0) printLine(io, 'no cutover moves recorded')
    })
}
