/**
 * The state of each logical shard (pure): what the heatmap shows and what
 * `status` counts. The backfill copies legacy in key order into all shards of
 * a dimension at once, so a dimension's backfill state is each of its
 * shards'; verify results, host reachability and job control refine it:
 *
 *   error     its host does not answer, or the backfill failed or went silent
 *   mismatch  the last verify of its dimension found differences in it
 *   paused    the backfill is paused by an operator
 *   copying   the backfill is running
 *   pending   the backfill has not started (or stopped at a checkpoint)
 *   verified  copied, and a clean verify started after the copy completed
 *   copied    copied, not yet verified since
 */
import type { Dimension } from '../router/shard-function.js'
import type { ShardPlacement } from '../config/schema.js'
import { SHARD_STATES, type ShardState, type ShardView, type Why } from './document.js'

/** What decides one dimension's shard states. */
export interface DimensionFacts {
  readonly dimension: Dimension
  readonly shards: readonly ShardPlacement[]
  /** The dimension's checkpoint; null when the control database did not answer. */
  readonly backfill: { readonly state: 'not-started' | 'running' | 'complete'; readonly completedAt: string | null } | null
  /** The backfill job's run state (null when none was recorded). */
  readonly job: { readonly state: string; readonly message: string | null; readonly percent: number | null } | null
  /** The last verify comparing this dimension, if any. */
  readonly verify: { readonly startedAt: string; readonly clean: boolean; readonly differences: number; readonly byShard: Record<string, number> | null; readonly runId: string } | null
  /** Error code per host that did not answer. */
  readonly hostErrors: ReadonlyMap<string, string>
}

function verifiedAfterCopy(f: DimensionFacts): boolean {
  const done = f.backfill?.completedAt
  return f.verify !== null && (done === null || done === undefined || Date.parse(f.verify.startedAt) >= Date.parse(done))
}

/** The 120 shard views of one dimension. */
export function shardViews(f: DimensionFacts): ShardView[] {
  return f.shards.map((p) => {
    const why: Why = {}
    let differences: number | null = null
    if (!f.verify) why.differences = 'no verify has compared this dimension yet'
    else if (f.verify.byShard) differences = f.verify.byShard[String(p.shard)] ?? 0
    else if (f.verify.clean) differences = 0
    else why.differences = `verify ${f.verify.runId} found ${f.verify.differences} differences but did not record them per shard; run \`shardctl verify\` again`
    const [state, reason] = decide(f, p, differences)
    return { shard: p.shard, state, reason, host: p.host, database: p.database, table: p.table, differences, why }
  })
}

function decide(f: DimensionFacts, p: ShardPlacement, differences: number | null): [ShardState, string] {
  const hostError = f.hostErrors.get(p.host)
  if (hostError) return ['error', `host ${p.host} does not answer (${hostError})`]
  if (differences !== null && differences > 0) return ['mismatch', `${differences} difference(s) in verify ${f.verify!.runId}; run \`shardctl verify --report <file>\`, then \`shardctl repair --report <file>\``]
  const b = f.backfill
  if (!b) return ['error', 'the control database does not answer: backfill state unknown']
  const pct = f.job?.percent
  const at = pct === null || pct === undefined ? '' : ` at ${pct}%`
  if (b.state === 'complete') {
    if (verifiedAfterCopy(f) && (f.verify!.clean || differences === 0)) return ['verified', `copied, and verify ${f.verify!.runId} found no difference in this shard`]
    return ['copied', 'copied; not verified since the copy completed: run `shardctl verify`']
  }
  if (b.state === 'not-started') return ['pending', 'backfill not started: run `shardctl backfill`']
  switch (f.job?.state) {
    case 'paused':
      return ['paused', `backfill paused${at}: run \`shardctl backfill resume\``]
    case 'running':
      return ['copying', `backfill copying${at}`]
    case 'failed':
      return ['error', `backfill failed${at} (${f.job.message ?? 'see its log'}): fix the cause, then run \`shardctl backfill\` to resume`]
    case 'stale':
      return ['error', `backfill stopped reporting${at}: its process may have died; run \`shardctl backfill\` to resume from the checkpoint`]
    default:
      return ['pending', `backfill stopped at a checkpoint${at}: run \`shardctl backfill\` to resume`]
  }
}

/** Shards per state (every state present, zero included). */
export function countStates(views: readonly ShardView[]): Record<ShardState, number> {
  const out = Object.fromEntries(SHARD_STATES.map((s) => [s, 0])) as Record<ShardState, number>
  for (const v of views) out[v.state]++
  return out
}
