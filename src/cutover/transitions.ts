/**
 * Which move is allowed from a stage state (pure): one stage at a time,
 * forward or back; at `read-shards` the read percentage ramps 1..100, each
 * ramp step a version of its own. Refusals are reasons, not exceptions.
 */
import { STAGES, stagePolicy, type Stage, type StageState } from './stages.js'

/** Direction of a move. */
export type MoveKind = 'advance' | 'rollback'

/** Where a move goes (stage and read percentage). */
export interface MoveTarget {
  readonly stage: Stage
  readonly readPercent: number
}

/** A planned transition, or the reason there is none. */
export type TransitionPlan =
  | { readonly ok: true; readonly from: StageState; readonly to: MoveTarget; readonly writePrimarySwitch: boolean; readonly pointOfNoReturn: string | null }
  | { readonly ok: false; readonly reason: string }

/** The state before any move was ever made. */
export const INITIAL_STAGE_STATE: StageState = { stage: 'legacy', version: 0, readPercent: 0, changedAt: new Date(0).toISOString() }

/** True when `value` names a stage. */
export function isStage(value: unknown): value is Stage {
  return typeof value === 'string' && (STAGES as readonly string[]).includes(value)
}

/** Position of a stage in STAGES (0 = legacy). */
export function stageIndex(stage: Stage): number {
  return STAGES.indexOf(stage)
}

/** The read percentage a stage implies when entered (read-shards starts at `percent`, default 1). */
export function defaultReadPercent(stage: Stage, percent?: number): number {
  if (stage === 'read-shards') return percent ?? 1
  return stage === 'write-shards' || stage === 'shards' ? 100 : 0
}

/** True when the write primary differs between two stages (the fenced, acknowledged switch). */
export function switchesWritePrimary(from: Stage, to: Stage): boolean {
  const v = (s: Stage) => stagePolicy({ stage: s, version: 0, readPercent: 0, changedAt: '' }).writePrimary
  return v(from) !== v(to)
}

const NO_RETURN =
  'from `shards` on, legacy receives no writes: rolling back to write-shards needs legacy brought up to date first (backfill into legacy, then verify), so rollback from shards needs --force'

/**
 * Plans one move. `percent` applies at read-shards only: advance ramps up to
 * it (or enters read-shards at it), rollback ramps down to it.
 * @example planTransition(state, 'advance', 25) // shadow-read -> read-shards at 25%
 */
export function planTransition(from: StageState, kind: MoveKind, percent?: number): TransitionPlan {
  if (percent !== undefined && (!Number.isInteger(percent) || percent < 1 || percent > 100)) {
    return { ok: false, reason: `--percent must be a whole number from 1 to 100 (got ${percent})` }
  }
  const i = stageIndex(from.stage)
  const plan = (to: MoveTarget): TransitionPlan => ({
    ok: true,
    from,
    to,
    writePrimarySwitch: switchesWritePrimary(from.stage, to.stage),
    pointOfNoReturn: kind === 'advance' && to.stage === 'shards' ? NO_RETURN : null,
  })
  if (kind === 'advance') {
    if (from.stage === 'read-shards') {
      if (percent !== undefined) {
        if (percent <= from.readPercent) return { ok: false, reason: `reads are already at ${from.readPercent}%; advance --percent takes a higher percentage (or use rollback --percent to ramp down)` }
        return plan({ stage: 'read-shards', readPercent: percent })
      }
      if (from.readPercent < 100) return { ok: false, reason: `reads from the shards are at ${from.readPercent}%; ramp to 100 first with \`shardctl cutover advance --percent 100\`` }
    } else if (percent !== undefined && STAGES[i + 1] !== 'read-shards') {
      return { ok: false, reason: `--percent applies only at read-shards (the next stage is ${STAGES[i + 1] ?? 'none'})` }
    }
    const next = STAGES[i + 1]
    if (next === undefined) return { ok: false, reason: 'already at shards, the last stage' }
    return plan({ stage: next, readPercent: defaultReadPercent(next, percent) })
  }
  if (from.stage === 'read-shards' && percent !== undefined) {
    if (percent >= from.readPercent) return { ok: false, reason: `reads are at ${from.readPercent}%; rollback --percent takes a lower percentage` }
    return plan({ stage: 'read-shards', readPercent: percent })
  }
  if (percent !== undefined && STAGES[i - 1] !== 'read-shards') {
    return { ok: false, reason: '--percent applies only at read-shards' }
  }
  const prev = STAGES[i - 1]
  if (prev === undefined) return { ok: false, reason: 'already at legacy, the first stage' }
  return plan({ stage: prev, readPercent: defaultReadPercent(prev, prev === 'read-shards' ? (percent ?? 100) : undefined) })
}

/** The state a move produces: the next version, stamped `now`. */
export function nextState(from: StageState, to: MoveTarget, now: Date): StageState {
  return { stage: to.stage, version: from.version + 1, readPercent: to.readPercent, changedAt: now.toISOString() }
}
