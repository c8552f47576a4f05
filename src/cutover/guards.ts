/**
 * Forward-step guards. They answer with reasons, not exceptions: the
 * evaluation is pure ({@link evaluateGuards} over {@link GuardInputs}), and
 * {@link collectGuardInputs} gathers the inputs from backfill, verify, the
 * dual-write journal and the instances' heartbeats. `--force --reason`
 * overrides failing guards; the move records which.
 */
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { readBackfillStatus, readLastFullVerify, type BackfillStatus, type VerifySummary } from './contract-readers.js'
import { readJournalDepth } from '../dualwrite/journal.js'
import type { StageState } from './stages.js'
import { readDurableStage, readLiveInstances, readStageState, type InstanceAck } from './switch-store.js'
import { stageIndex, type MoveKind, type MoveTarget } from './transitions.js'

/** Names of the guards (stable: recorded in the audit log when forced). */
export type GuardName = 'backfill-complete' | 'verify-clean' | 'journal-empty' | 'instances-acknowledged' | 'reads-at-100' | 'legacy-current'

/** One guard's answer. */
export interface GuardResult {
  readonly guard: GuardName
  readonly ok: boolean
  /** Why it refuses, and what to do next (set when !ok). */
  readonly reason?: string
}

/** A value read for a guard, or why it could not be read. */
export type Read<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string }

/** Everything the guards look at. */
export interface GuardInputs {
  readonly kind: MoveKind
  readonly state: StageState
  readonly target: MoveTarget
  /** When the current stage (not ramp step) was entered, by the control database's clock; null when never recorded. */
  readonly stageEnteredAt: string | null
  readonly backfill: Read<BackfillStatus>
  readonly lastVerify: Read<VerifySummary | null>
  readonly journal: Read<{ total: number; byPrimary: Record<string, number> }>
  readonly instances: Read<readonly InstanceAck[]>
}

/** The readers {@link collectGuardInputs} calls (the contract functions by default). */
export interface GuardReaders {
  readBackfillStatus(rt: Runtime): Promise<BackfillStatus>
  readLastVerify(rt: Runtime): Promise<VerifySummary | null>
  readJournalDepth(rt: Runtime): Promise<{ total: number; byPrimary: Record<string, number> }>
}

/** The contract functions of backfill, verify and the dual-write journal. */
/**
 * A journal entry younger than this is a write still copying to its
 * secondaries (every write leaves an intent entry for a few ms), not a backlog.
 * The write-primary switch drains every entry, young or old, inside the fence.
 */
export const JOURNAL_SETTLE_MS = 5_000

export const DEFAULT_GUARD_READERS: GuardReaders = {
  readBackfillStatus,
  // The last FULL verify: a --since run never satisfies the guard.
  readLastVerify: readLastFullVerify,
  readJournalDepth: (rt) => readJournalDepth(rt, { minAgeMs: JOURNAL_SETTLE_MS }),
}

function guardsFor(kind: MoveKind, from: StageState, to: MoveTarget): GuardName[] {
  if (kind === 'rollback') return from.stage === 'shards' ? ['legacy-current'] : []
  if (to.stage === 'dual-write') return ['instances-acknowledged']
  const data: GuardName[] = ['backfill-complete', 'verify-clean', 'journal-empty', 'instances-acknowledged']
  return to.stage === 'write-shards' ? [...data, 'reads-at-100'] : data
}

function unreadable(what: string, error: string): string {
  return `cannot read ${what} (${error}); fix that, then retry`
}

/**
 * Evaluates the guards of one move (pure). Returns every guard that applies, passing or not.
 * @example evaluateGuards(inputs).filter((g) => !g.ok).map((g) => g.reason)
 */
export function evaluateGuards(i: GuardInputs): GuardResult[] {
  const ok = (guard: GuardName): GuardResult => ({ guard, ok: true })
  const no = (guard: GuardName, reason: string): GuardResult => ({ guard, ok: false, reason })
  return guardsFor(i.kind, i.state, i.target).map((g): GuardResult => {
    switch (g) {
      case 'backfill-complete': {
        if (!i.backfill.ok) return no(g, unreadable('the backfill status', i.backfill.error))
        const b = i.backfill.value
        if (b.state === 'complete') return ok(g)
        const dims = Object.entries(b.dimensions)
          .filter(([, d]) => d.state !== 'complete')
          .map(([dim, d]) => `${dim} ${d.state} (${d.rowsCopied} rows copied)`)
        return no(g, `backfill is ${b.state}${dims.length ? `: ${dims.join(', ')}` : ''}; run \`shardctl backfill\` to completion`)
      }
      case 'verify-clean': {
        if (!i.lastVerify.ok) return no(g, unreadable('the last verify', i.lastVerify.error))
        const v = i.lastVerify.value
        if (v === null) return no(g, 'no verify has run; run `shardctl verify` (all dimensions)')
        if (!v.clean || v.differences > 0) return no(g, `the last verify (${v.runId}) found ${v.differences} differing rows; run \`shardctl repair\`, then \`shardctl verify\``)
        if (v.dimension !== 'all') return no(g, `the last verify (${v.runId}) covered only the ${v.dimension} dimension; run \`shardctl verify\` over all dimensions`)
        if (v.since !== null) return no(g, `the last verify (${v.runId}) compared only rows changed since ${v.since}; the guard needs a full \`shardctl verify\``)
        if (v.laterDifferences) return no(g, `a verify that finished after the last full one (${v.runId}) found differences; run \`shardctl repair\`, then a full \`shardctl verify\``)
        if (i.stageEnteredAt !== null && Date.parse(v.startedAt) < Date.parse(i.stageEnteredAt)) {
          return no(g, `the last verify (${v.runId}) started ${v.startedAt}, before the stage changed to ${i.state.stage} at ${i.stageEnteredAt}; run \`shardctl verify\` again`)
        }
        return ok(g)
      }
      case 'journal-empty': {
        if (!i.journal.ok) return no(g, unreadable('the dual-write journal', i.journal.error))
        const j = i.journal.value
        if (j.total === 0) return ok(g)
        const where = Object.entries(j.byPrimary).filter(([, n]) => n > 0).map(([p, n]) => `${p}: ${n}`).join(', ')
        return no(g, `the dual-write journal holds ${j.total} entries (${where}); run \`shardctl dualwrite drain\` and bring failed hosts back`)
      }
      case 'instances-acknowledged': {
        if (!i.instances.ok) return no(g, unreadable('the instances\u2019 heartbeats', i.instances.error))
        const behind = i.instances.value.filter((a) => a.version !== i.state.version)
        if (behind.length === 0) return ok(g)
        return no(g, `${behind.length} live instance(s) have not acknowledged stage version ${i.state.version}: ${behind.map((a) => `${a.instanceId} at ${a.version}`).join(', ')}; wait for them or stop them`)
      }
      case 'reads-at-100':
        return i.state.readPercent >= 100 ? ok(g) : no(g, `reads from the shards are at ${i.state.readPercent}%; ramp to 100 first`)
      case 'legacy-current':
        return no(g, 'legacy has received no writes since the move to shards; bring legacy up to date (backfill into legacy, verify) and roll back with --force --reason')
    }
  })
}

async function read<T>(fn: () => Promise<T>): Promise<Read<T>> {
  try {
    return { ok: true, value: await fn() }
  } catch (err) {
    const e = err as { code?: string; message?: string }
    return { ok: false, error: e instanceof ShardkitError ? e.code : (e?.code ?? e?.message ?? String(err)) }
  }
}

/** Reads every guard input for a move from `state` to `target` (readers default to the contract functions). */
export async function collectGuardInputs(rt: Runtime, move: { kind: MoveKind; state: StageState; target: MoveTarget }, readers: GuardReaders = DEFAULT_GUARD_READERS): Promise<GuardInputs> {
  const names = guardsFor(move.kind, move.state, move.target)
  const skip = { ok: false, error: 'not needed' } as const
  const [durable, backfill, lastVerify, journal, instances] = await Promise.all([
    readDurableStage(rt).catch(() => undefined),
    names.includes('backfill-complete') ? read(() => readers.readBackfillStatus(rt)) : skip,
    names.includes('verify-clean') ? read(() => readers.readLastVerify(rt)) : skip,
    names.includes('journal-empty') ? read(() => readers.readJournalDepth(rt)) : skip,
    read(() => readLiveInstances(rt.redis(), rt.config.redis.keyPrefix)),
  ])
  return { ...move, stageEnteredAt: durable?.stageEnteredAt ?? null, backfill, lastVerify, journal, instances }
}

/**
 * Refuses a backfill from `write-shards` on: the user shards are the write
 * primary there and legacy only a copy of them, so a copy from legacy could
 * only bring stale rows into the primary (its tombstone and version checks
 * keep them out, but there is nothing left to copy). Checked before every
 * chunk too, so a backfill that a switch overtakes stops at its checkpoint.
 * @throws ShardkitError `PRECONDITION_FAILED`
 */
export function assertBackfillStage(state: StageState): void {
  if (stageIndex(state.stage) >= stageIndex('write-shards')) {
    throw new ShardkitError(
      'PRECONDITION_FAILED',
      `the stage is ${state.stage}: the user shards are the write primary and legacy is only a copy, so there is nothing to backfill from it; to bring legacy back for a rollback, see the runbook (rollback from shards)`,
      { stage: state.stage },
    )
  }
}

/**
 * Refuses a backfill while any live instance may still be at `legacy` (it
 * would write legacy only and leave rows behind the copy), and from
 * `write-shards` on ({@link assertBackfillStage}).
 * @throws ShardkitError `PRECONDITION_FAILED` with the reason
 */
export async function assertBackfillAllowed(rt: Runtime): Promise<void> {
  const state = await readStageState(rt)
  assertBackfillStage(state)
  if (stageIndex(state.stage) < stageIndex('dual-write')) {
    throw new ShardkitError('PRECONDITION_FAILED', `the stage is ${state.stage}: dual writes are off, so a backfill would miss new writes; run \`shardctl cutover advance\` to dual-write first`, { stage: state.stage })
  }
  const instances = await readLiveInstances(rt.redis(), rt.config.redis.keyPrefix)
  const behind = instances.filter((a) => a.stage === null || stageIndex(a.stage) < stageIndex('dual-write'))
  if (behind.length > 0) {
    throw new ShardkitError(
      'PRECONDITION_FAILED',
      `${behind.length} live instance(s) have not acknowledged dual-write (${behind.map((a) => a.instanceId).join(', ')}); wait for them to pick up the stage or stop them, then retry`,
      { instances: behind.map((a) => a.instanceId) },
    )
  }
}
