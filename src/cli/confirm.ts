/**
 * The point of no return waits for a person. `cutover advance` into
 * `write-shards` (the write primary switches to the shards) or `shards`
 * (legacy stops receiving writes) first runs the same checks as `--dry-run`,
 * shows the plan on stderr, and asks for the target stage's name to be
 * typed. `--yes` is for automation. Without a terminal and without `--yes`
 * it refuses (exit 3) and says why; a wrong answer changes nothing (exit 3).
 *
 * Also here: the notifications of a move (stage change, abort, refusal).
 */
import { createInterface } from 'node:readline/promises'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import type { Stage } from '../cutover/stages.js'
import type { MoveResult } from '../cutover/steps.js'
import { readStageState } from '../cutover/switch-store.js'
import { createNotifier } from '../notify/notifier.js'
import type { CliIO } from './io.js'

/** Stages whose entry needs a typed confirmation. */
export const CONFIRM_STAGES: readonly Stage[] = ['write-shards', 'shards']

const WHY: Record<string, string> = {
  'write-shards': 'writes move to the shards: from here legacy is only a copy, and the way back needs legacy caught up',
  shards: 'legacy stops receiving writes: rolling back afterwards needs legacy backfilled and verified first',
}

/** The current stage version (for "did the stage move while a person read the plan"). */
export async function readStageVersion(rt: Runtime): Promise<number> {
  return (await readStageState(rt)).version
}

/**
 * Asks for the confirmation when the planned move needs it.
 * @returns true when a person confirmed, false when no confirmation was needed
 * @throws ShardkitError `PRECONDITION_FAILED` (exit 3) without a terminal, or when the answer does not match
 */
export async function confirmPointOfNoReturn(io: CliIO, plan: MoveResult, force: boolean, render: (io: CliIO, r: MoveResult) => void): Promise<boolean> {
  const target = plan.target?.stage
  if (!target || !CONFIRM_STAGES.includes(target) || plan.outcome !== 'dry-run') return false
  // A move the guards refuse is refused anyway (exit 3, every reason shown): nothing to confirm.
  if (plan.reasons.length > 0 && !force) return false
  const stdin = io.stdin
  if (!stdin?.isTTY) {
    throw new ShardkitError(
      'PRECONDITION_FAILED',
      `cutover advance into ${target} is a point of no return (${WHY[target]}) and needs a person to confirm it, but there is no terminal to ask on; run it on a terminal, or pass --yes if this is automation that has already been approved. Nothing changed`,
      { target, confirmation: 'required' },
    )
  }
  const err = { ...io, stdout: io.stderr }
  io.stderr.write(`\nPLAN (nothing has changed yet):\n`)
  render(err, plan)
  io.stderr.write(`\n${target}: ${WHY[target]}.\n`)
  const rl = createInterface({ input: stdin, output: io.stderr, terminal: true })
  let answer: string
  try {
    answer = (await rl.question(`Type the target stage name (${target}) to go ahead; anything else cancels: `)).trim()
  } finally {
    rl.close()
  }
  if (answer !== target) {
    throw new ShardkitError('PRECONDITION_FAILED', `confirmation did not match (typed "${answer.slice(0, 40)}", expected "${target}"); nothing changed`, { target, confirmation: 'mismatch' })
  }
  io.stderr.write(`confirmed: moving to ${target}\n`)
  return true
}

/** Sends the notification a finished move calls for (stage change, abort, refusal). Never throws. */
export async function notifyMove(io: CliIO, rt: Runtime, r: MoveResult, actor: string): Promise<void> {
  const notifier = createNotifier(rt.config.notify, io.logger)
  if (!notifier.configured) return
  const label = (s: { stage: string; readPercent: number; version?: number } | null) => (s ? `${s.stage}${s.stage === 'read-shards' ? ` ${s.readPercent}%` : ''}${s.version !== undefined ? ` (v${s.version})` : ''}` : '-')
  const details = { kind: r.kind, outcome: r.outcome, from: r.from, to: r.to, target: r.target, reasons: r.reasons, fenceMs: r.fenceMs }
  if (r.outcome === 'done') await notifier.send('stage-changed', `cutover ${r.kind}: ${label(r.from)} -> ${label(r.to)}`, details, actor)
  else if (r.outcome === 'aborted' || r.outcome === 'recovered') await notifier.send('move-aborted', `cutover ${r.kind} ${r.outcome}: back at ${label(r.to)}: ${r.reasons.join('; ')}`, details, actor)
  else if (r.outcome === 'refused') await notifier.send('guard-refused', `cutover ${r.kind} refused at ${label(r.from)}: ${r.reasons.join('; ')}`, details, actor)
}
