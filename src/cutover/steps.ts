/**
 * A cutover move as ordered steps, each with a dry-run twin (its
 * description): lock, guards, raise the fences, publish the new version,
 * wait for every live instance, drain the journal (write-primary switch
 * only), record the durable copy (the commit point), open the fences, unlock.
 * Before the commit point any failure returns everything to where it was
 * (the old stage, published as a new version, fences opened at it); after it
 * the move is done. Guard refusals and aborts are results, not exceptions.
 */
import { ShardkitError, isShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { drainJournal } from '../dualwrite/journal.js'
import { primaryDatabases } from '../dualwrite/placement.js'
import type { StageState } from './stages.js'
import { collectGuardInputs, evaluateGuards, type GuardReaders, type GuardResult } from './guards.js'
import { raiseFences, type RaisedFences } from './fence.js'
import { recoverIfNeeded } from './recovery.js'
import { acquireRunLock, appendAudit, defaultActor, publishStage, readDurableStage, readLiveInstances, readRedisStage, readRunLock, readStageState, writeDurableStage, type AuditEntry, type DurableExpectation, type InstanceAck, type RunLock } from './switch-store.js'
import { INITIAL_STAGE_STATE, nextState, planTransition, type MoveKind, type MoveTarget } from './transitions.js'
import { phase } from '../runtime/phase-hooks.js'

/** The names of a move's steps, in order. */
export type StepName = 'lock' | 'guards' | 'raise-fences' | 'publish' | 'await-acks' | 'drain-journal' | 'record' | 'open-fences' | 'unlock'

/** One step: what it does (the dry-run text) and, once run, how it went. */
export interface StepReport {
  readonly step: StepName
  readonly description: string
  status: 'planned' | 'done' | 'failed' | 'skipped'
  ms?: number
  detail?: string
}

/** Options of {@link moveStage}. */
export interface MoveOptions {
  readonly kind: MoveKind
  /** At read-shards: the read percentage to ramp to (1..100). */
  readonly percent?: number
  readonly reason?: string
  /** Override failing guards (needs `reason`); recorded in the audit log. */
  readonly force?: boolean
  /** Plan and check only: no lock, nothing written. */
  readonly dryRun?: boolean
  /** Who moves (audit); default SHARDKIT_ACTOR or user@host. */
  readonly actor?: string
  /** Bound on waiting for every live instance to acknowledge (default 2000 ms). */
  readonly ackTimeoutMs?: number
  /** Bound on the journal drain inside the fence (default 5000 ms). */
  readonly drainTimeoutMs?: number
  /**
   * Bound on how long the fences may hold writes in one attempt (default
   * 1000 ms): an attempt that cannot reach its commit point inside it aborts,
   * reopening writes at the old stage, and is tried again (see `attempts`).
   */
  readonly fenceBudgetMs?: number
  /** Attempts when one aborts on its budget, a laggard instance or a journal that did not drain (default 3). */
  readonly attempts?: number
  readonly readers?: GuardReaders
  readonly signal?: AbortSignal
  readonly now?: () => Date
}

/** What a move did (or, for a dry run, would do). */
export interface MoveResult {
  readonly outcome: 'done' | 'refused' | 'aborted' | 'recovered' | 'dry-run'
  readonly kind: MoveKind
  readonly from: StageState
  /** The state in force afterwards (for an abort or a recovery: the restored one). */
  readonly to: StageState | null
  readonly target: MoveTarget | null
  readonly guards: readonly GuardResult[]
  readonly forcedGuards: readonly string[]
  readonly steps: readonly StepReport[]
  /** Milliseconds writes were held by the fence. */
  readonly fenceMs: number | null
  /** Set when the move cannot be simply undone. */
  readonly pointOfNoReturn: string | null
  /** Why the move was refused or aborted. */
  readonly reasons: readonly string[]
  readonly instances: readonly InstanceAck[]
  /** Attempts made (an aborted attempt reopened writes at the old stage, and the next one started from there). */
  readonly attempts: number
  /** How long each attempt held writes (ms, null where it raised no fence); `fenceMs` is the last one's. */
  readonly fenceMsByAttempt: readonly (number | null)[]
  /** Things that went wrong after the commit point without undoing the move (an audit row that could not be written). */
  readonly warnings: readonly string[]
}

/** The steps a move takes, with their descriptions (pure: the dry-run twin). */
export function describeSteps(from: StageState, to: MoveTarget, o: { primaries: readonly string[]; writePrimarySwitch: boolean; ackTimeoutMs: number; drainTimeoutMs: number; fenceBudgetMs: number }): StepReport[] {
  const v = from.version + 1
  const s = (step: StepName, description: string): StepReport => ({ step, description, status: 'planned' })
  return [
    s('lock', 'take the cutover run lock (refused if another move runs)'),
    s('guards', 'check the guards of this move (overridden only with --force --reason, recorded)'),
    s('raise-fences', `raise the write fence on ${o.primaries.length} primary database(s) (${o.primaries.join(', ')}): wait for writes in flight, hold new ones; from here writes are held at most ${o.fenceBudgetMs} ms before the attempt aborts and reopens them`),
    s('publish', `publish ${to.stage}${to.stage === 'read-shards' ? ` at ${to.readPercent}% reads` : ''} as stage version ${v} in Redis (pub/sub)`),
    s('await-acks', `wait up to ${o.ackTimeoutMs} ms for every live instance to acknowledge version ${v}; otherwise abort and restore ${from.stage} as version ${v + 1}`),
    ...(o.writePrimarySwitch ? [s('drain-journal', `drain the dual-write journal inside the fence (up to ${o.drainTimeoutMs} ms; abort and restore if entries remain)`)] : []),
    s('record', `write version ${v} to the durable copy in the control database, only if it still holds version ${from.version} and this move still holds the run lock (the commit point)`),
    s('open-fences', `open every fence at version ${v}: writes resume under ${to.stage}; writes planned at version ${from.version} are refused (retryable)`),
    s('unlock', 'release the run lock and append the audit row'),
  ]
}

/** The Redis stage still holds what this move published (an emptied Redis loses it, and with it every heartbeat). */
async function stillPublished(rt: Runtime, state: StageState): Promise<boolean> {
  const s = await readRedisStage(rt.redis(), rt.config.redis.keyPrefix)
  return s !== undefined && s.version === state.version && s.stage === state.stage
}

async function awaitAcks(rt: Runtime, state: StageState, timeoutMs: number, signal?: AbortSignal): Promise<{ ok: boolean; behind: InstanceAck[]; instances: InstanceAck[]; lost: boolean }> {
  const deadline = performance.now() + timeoutMs
  for (let round = 1; ; round++) {
    const instances = await readLiveInstances(rt.redis(), rt.config.redis.keyPrefix)
    const behind = instances.filter((a) => a.version < state.version)
    // Zero live instances only counts as "all acknowledged" while Redis still holds what we
    // published: a Redis that lost its data also lost every heartbeat, and the instances that
    // missed the message would never learn the new version. Checked while waiting too.
    if (behind.length === 0 || round % 20 === 0) {
      if (!(await stillPublished(rt, state))) return { ok: false, behind, instances, lost: true }
      if (behind.length === 0) return { ok: true, behind, instances, lost: false }
    }
    if (performance.now() >= deadline || signal?.aborted) return { ok: false, behind, instances, lost: false }
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** Appends an audit row after the commit point: retried, never failing a move that is done. */
async function auditAfterCommit(rt: Runtime, entry: AuditEntry, warnings: string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await appendAudit(rt, entry)
      return
    } catch (err) {
      if (attempt >= 3) {
        const msg = `the move is done, but its audit row could not be written (${(err as { code?: string }).code ?? (err as Error).message}); \`shardctl cutover history\` will not show it`
        rt.logger.error({ code: (err as { code?: string }).code }, msg)
        warnings.push(msg)
        return
      }
      await sleep(100 * attempt)
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/**
 * Moves the stage one step (or one ramp step at read-shards).
 *
 * Give it a runtime of its own (as `shardctl cutover` has, in its own
 * process), not the one whose pools serve a DualWriteStore taking traffic:
 * while the fences are raised every waiting write holds one of those pools'
 * connections, and the drain could find none free for its copies.
 *
 * Writes are held from the raise to the open. An attempt that cannot reach
 * its commit point within `fenceBudgetMs` aborts (the old stage comes back as
 * a new version, the fences reopen at it) and the move is tried again, up to
 * `attempts` times: a busy host slows a switch down, it never freezes writes
 * for longer than the budget.
 * @throws ShardkitError `USAGE` (--force without --reason), `ALREADY_RUNNING` (exit 5), `PRECONDITION_FAILED` (not provisioned), driver errors
 * @example const r = await moveStage(rt, { kind: 'advance', reason: 'backfill verified' })
 */
export async function moveStage(rt: Runtime, o: MoveOptions): Promise<MoveResult> {
  if (o.force && !o.reason?.trim()) throw new ShardkitError('USAGE', '--force needs --reason "..." saying why the guards are overridden (it is recorded)', { argument: '--reason' })
  const attempts = o.attempts ?? 3
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 20) throw new ShardkitError('USAGE', `attempts must be a whole number from 1 to 20 (got ${String(o.attempts)})`, { argument: '--attempts' })
  const budget = o.fenceBudgetMs ?? 1_000
  if (!Number.isInteger(budget) || budget < 50 || budget > 600_000) throw new ShardkitError('USAGE', `fenceBudgetMs must be a whole number of ms from 50 to 600000 (got ${String(o.fenceBudgetMs)})`, { argument: '--fence-budget-ms' })
  const now = o.now ?? (() => new Date())
  const actor = o.actor ?? defaultActor()
  const ackTimeoutMs = o.ackTimeoutMs ?? 2_000
  const drainTimeoutMs = o.drainTimeoutMs ?? 5_000
  const primaries = primaryDatabases(rt.config).map((p) => p.name)
  const base = { kind: o.kind, forcedGuards: [] as string[], fenceMs: null, instances: [] as InstanceAck[], attempts: 0, warnings: [] as string[], fenceMsByAttempt: [] as (number | null)[] }

  if (o.dryRun) {
    const from = (await readDurableStage(rt))?.state ?? (await readStageState(rt))
    const plan = planTransition(from, o.kind, o.percent)
    if (!plan.ok) return { ...base, outcome: 'refused', from, to: null, target: null, guards: [], steps: [], pointOfNoReturn: null, reasons: [plan.reason] }
    const inputs = await collectGuardInputs(rt, { kind: o.kind, state: from, target: plan.to }, o.readers)
    const guards = evaluateGuards(inputs)
    const holder = await readRunLock(rt)
    const reasons = [...guards.filter((g) => !g.ok).map((g) => g.reason!), ...(holder ? [`another move holds the run lock (${holder.actor} on ${holder.host} pid ${holder.pid})`] : [])]
    const steps = describeSteps(from, plan.to, { primaries, writePrimarySwitch: plan.writePrimarySwitch, ackTimeoutMs, drainTimeoutMs, fenceBudgetMs: budget })
    return { ...base, outcome: 'dry-run', from, to: null, target: plan.to, guards, steps, pointOfNoReturn: plan.pointOfNoReturn, reasons, instances: inputs.instances.ok ? inputs.instances.value : [] }
  }

  const lock = await acquireRunLock(rt, actor)
  try {
    await phase('cutover.locked', { kind: o.kind })
    const recovered = await recoverIfNeeded(rt, { actor, ackTimeoutMs, now, lock })
    if (recovered) {
      return { ...base, outcome: 'recovered', from: recovered.from, to: recovered.to, target: null, guards: [], steps: [], pointOfNoReturn: null, reasons: [recovered.reason], fenceMs: recovered.fenceMs, attempts: 1, fenceMsByAttempt: [recovered.fenceMs] }
    }
    let result: (MoveResult & { retryable: boolean }) | undefined
    const held: (number | null)[] = []
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        // The abort published the old stage again: let the instances take it before the next try.
        const restored = (await readDurableStage(rt))?.state
        if (restored) await awaitAcks(rt, restored, ackTimeoutMs, o.signal).catch(() => undefined)
        await sleep(Math.min(1_000, 100 * attempt))
      }
      const r = { ...(await attemptMove(rt, o, { actor, now, lock, budget, ackTimeoutMs, drainTimeoutMs, primaries })), attempts: attempt }
      held.push(r.fenceMs)
      if (result?.outcome === 'aborted' && r.outcome === 'refused') {
        // The retry was refused (say an instance still behind): report the abort, and why it was not retried.
        result = { ...result, attempts: attempt, reasons: [...result.reasons, `not tried again: ${r.reasons.join('; ')}`] }
        break
      }
      result = r
      if (result.outcome !== 'aborted' || !result.retryable || o.signal?.aborted) break
      rt.logger.warn({ attempt, of: attempts, reasons: result.reasons }, 'cutover: attempt aborted, writes reopened at the old stage; trying again')
    }
    const { retryable: _r, ...out } = result!
    return { ...out, fenceMsByAttempt: held }
  } finally {
    await lock.release().catch(() => undefined)
  }
}

interface AttemptContext {
  readonly actor: string
  readonly now: () => Date
  readonly lock: RunLock
  readonly budget: number
  readonly ackTimeoutMs: number
  readonly drainTimeoutMs: number
  readonly primaries: readonly string[]
}

/** One attempt under the run lock. `retryable`: it aborted on something that a new attempt may not meet (budget, laggard, drain). */
async function attemptMove(rt: Runtime, o: MoveOptions, x: AttemptContext): Promise<MoveResult & { retryable: boolean }> {
  const { actor, now, lock, budget } = x
  const base = { kind: o.kind, forcedGuards: [] as string[], fenceMs: null, instances: [] as InstanceAck[], attempts: 0, warnings: [] as string[], fenceMsByAttempt: [] as (number | null)[], retryable: false }
  const durable = await readDurableStage(rt)
  const from = durable?.state ?? INITIAL_STAGE_STATE
  const expect: DurableExpectation = { version: durable ? durable.state.version : null, lockToken: lock.token }
  const audit = { actor, action: o.kind, reason: o.reason ?? null, from }
  const plan = planTransition(from, o.kind, o.percent)
  if (!plan.ok) {
    await appendAudit(rt, { ...audit, outcome: 'refused', to: null, forced: false, forcedGuards: [], fenceMs: null, detail: plan.reason })
    return { ...base, outcome: 'refused', from, to: null, target: null, guards: [], steps: [], pointOfNoReturn: null, reasons: [plan.reason] }
  }
  const steps = describeSteps(from, plan.to, { primaries: x.primaries, writePrimarySwitch: plan.writePrimarySwitch, ackTimeoutMs: x.ackTimeoutMs, drainTimeoutMs: x.drainTimeoutMs, fenceBudgetMs: budget })
  const step = (name: StepName) => steps.find((s) => s.step === name)!
  const timed = async <T>(name: StepName, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now()
    try {
      const v = await fn()
      Object.assign(step(name), { status: 'done', ms: Math.round((performance.now() - t) * 10) / 10 })
      return v
    } catch (err) {
      Object.assign(step(name), { status: 'failed', ms: Math.round((performance.now() - t) * 10) / 10, detail: (err as Error).message })
      throw err
    }
  }
  step('lock').status = 'done'

  const inputs = await timed('guards', () => collectGuardInputs(rt, { kind: o.kind, state: from, target: plan.to }, o.readers))
  const guards = evaluateGuards(inputs)
  const failing = guards.filter((g) => !g.ok)
  const instances = inputs.instances.ok ? [...inputs.instances.value] : []
  const common = { ...base, from, target: plan.to, guards, pointOfNoReturn: plan.pointOfNoReturn, instances }
  if (failing.length > 0 && !o.force) {
    step('guards').status = 'failed'
    await appendAudit(rt, { ...audit, outcome: 'refused', to: null, forced: false, forcedGuards: [], fenceMs: null, detail: failing.map((g) => g.guard).join(',') })
    return { ...common, outcome: 'refused', to: null, steps, reasons: failing.map((g) => g.reason!) }
  }
  const forcedGuards = failing.map((g) => g.guard)
  if (forcedGuards.length > 0) rt.logger.warn({ forcedGuards, actor, reason: o.reason }, 'cutover: guards overridden with --force')
  await phase('cutover.guards-passed', { kind: o.kind, from: from.version })

  // Everything from the raise to the commit point fits in the budget, less a reserve for the commit itself.
  const t0 = performance.now()
  const tail = Math.min(150, Math.floor(budget / 5))
  const left = () => budget - tail - (performance.now() - t0)
  let raised: RaisedFences
  try {
    raised = await timed('raise-fences', () => raiseFences(rt, { currentVersion: from.version, timeoutMs: Math.max(1, Math.min(x.ackTimeoutMs, left())) }))
  } catch (err) {
    if (isShardkitError(err, 'PRECONDITION_FAILED')) throw err
    // Nothing was published: the fences rolled back to where they were.
    const detail = `could not raise the fences: ${(err as Error).message}`
    await appendAudit(rt, { ...audit, outcome: 'aborted', to: from, forced: forcedGuards.length > 0, forcedGuards, fenceMs: performance.now() - t0, detail })
    return { ...common, outcome: 'aborted', to: from, steps, forcedGuards, fenceMs: performance.now() - t0, reasons: [detail], retryable: isShardkitError(err, 'SHARD_TIMEOUT') }
  }
  const next = nextState(from, plan.to, now())
  let abortReason: string | undefined
  let retryable = false
  let persisted = false
  const overBudget = (what: string) => {
    retryable = true
    return `the switch could not ${what} inside its fence budget of ${budget} ms (writes were reopened at the old stage)`
  }
  try {
    await phase('cutover.fences-raised', { kind: o.kind, from: from.version, to: next.version })
    await lock.assertHeld()
    await timed('publish', () => publishStage(rt, next))
    await phase('cutover.published', { kind: o.kind, from: from.version, to: next.version })
    const acks = await timed('await-acks', () => awaitAcks(rt, next, Math.max(1, Math.min(x.ackTimeoutMs, left())), o.signal))
    if (!acks.ok) {
      step('await-acks').status = 'failed'
      // A Redis that lost the stage may be back for the next attempt; a laggard past its own bound is not retried.
      retryable = acks.lost && !o.signal?.aborted
      abortReason = o.signal?.aborted
        ? 'interrupted while waiting for the instances'
        : acks.lost
          ? `Redis no longer holds the published stage version ${next.version} (it lost its data): instances that missed the change could not learn it`
          : left() <= 0 && acks.behind.length > 0
            ? overBudget(`hear from every instance (${acks.behind.map((a) => `${a.instanceId} at ${a.version}`).join(', ')} behind)`)
            : `${acks.behind.length} live instance(s) did not acknowledge version ${next.version} within ${x.ackTimeoutMs} ms: ${acks.behind.map((a) => `${a.instanceId} at ${a.version}`).join(', ')}`
    } else if (plan.writePrimarySwitch) {
      await phase('cutover.acks-received', { kind: o.kind, from: from.version, to: next.version })
      const drainMs = Math.max(1, Math.floor(Math.min(x.drainTimeoutMs, left())))
      const drained = await timed('drain-journal', () => drainJournal(rt, { signal: AbortSignal.timeout(drainMs), logger: rt.logger, concurrency: 8 }).catch((err: unknown) => {
        if ((err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError') return { replayed: 0, failed: 0, remaining: 1, unreachable: [] as string[], timedOut: true }
        throw err
      }))
      if (drained.remaining > 0 || drained.failed > 0 || drained.unreachable.length > 0) {
        step('drain-journal').status = 'failed'
        retryable = true
        abortReason = 'timedOut' in drained ? overBudget('drain the dual-write journal') : `the dual-write journal did not drain inside the fence (${drained.remaining} left${drained.unreachable.length ? `, unreachable: ${drained.unreachable.join(', ')}` : ''})`
      } else await phase('cutover.journal-drained', { kind: o.kind, from: from.version, to: next.version })
    } else await phase('cutover.acks-received', { kind: o.kind, from: from.version, to: next.version })
    if (abortReason === undefined && left() < 0) abortReason = overBudget('reach its commit point')
    if (abortReason === undefined) {
      // Fences committed raised at the new version first: a crash from here on leaves writes
      // refused until the next move recovers, never the old stage's fences open under a
      // durable copy that already names the new one.
      await lock.assertHeld()
      await raised.persist(next.version)
      persisted = true
      await timed('record', () => writeDurableStage(rt, next, next.stage !== from.stage, expect))
    }
  } catch (err) {
    abortReason = `${(err as Error).message}`
    retryable = isShardkitError(err) && err.retryable && !persisted
  }

  if (abortReason !== undefined) {
    // Before the commit point: the old stage comes back as a new version, so
    // instances that applied `next` move back and writes planned at it are refused.
    const restore: StageState = { stage: from.stage, readPercent: from.readPercent, version: next.version + 1, changedAt: now().toISOString() }
    const mine = await lock.assertHeld().then(() => true, () => false)
    let notOpen: string[] = []
    if (mine && !persisted) {
      await publishStage(rt, restore).catch((err) => rt.logger.error({ err: (err as Error).message }, 'cutover abort: cannot publish the restored stage; run the move again to recover'))
      const wrote = await writeDurableStage(rt, restore, false, expect).then(() => true, (err: unknown) => {
        rt.logger.error({ err: (err as Error).message }, 'cutover abort: cannot write the durable copy; the next move recovers')
        return false
      })
      notOpen = wrote ? await raised.open(restore.version) : (await raised.release(), x.primaries.slice())
    } else {
      // Not ours to undo any more (the lock is gone, or the fences were committed raised at the
      // new version): leave writes refused; the next move recovers under the lock.
      await raised.release()
      notOpen = x.primaries.slice()
    }
    const fenceMs = performance.now() - t0
    const detail = abortReason + (notOpen.length ? `; fences not reopened on ${notOpen.join(', ')} (writes there are refused until the next move recovers)` : '')
    rt.logger.warn({ from: from.stage, to: plan.to.stage, restored: restore.version, fenceMs: Math.round(fenceMs) }, `cutover aborted: ${detail}`)
    await appendAudit(rt, { ...audit, outcome: 'aborted', to: restore, forced: forcedGuards.length > 0, forcedGuards, fenceMs, detail }).catch((err) => rt.logger.error({ err: (err as Error).message }, 'cutover abort: audit row not written'))
    return { ...common, outcome: 'aborted', to: restore, steps, forcedGuards, fenceMs, reasons: [detail], retryable: retryable && mine && notOpen.length === 0 }
  }

  // The commit point is behind us: from here nothing fails the move.
  const warnings: string[] = []
  await phase('cutover.recorded', { kind: o.kind, from: from.version, to: next.version })
  const notOpen = await timed('open-fences', () => raised.open(next.version))
  await phase('cutover.fences-opened', { kind: o.kind, from: from.version, to: next.version })
  const fenceMs = performance.now() - t0
  if (notOpen.length) step('open-fences').detail = `not opened on ${notOpen.join(', ')}: writes there are refused until the next move recovers them`
  rt.logger.info({ from: from.stage, to: next.stage, version: next.version, readPercent: next.readPercent, fenceMs: Math.round(fenceMs), forcedGuards }, 'cutover move done')
  await auditAfterCommit(rt, { ...audit, outcome: 'done', to: next, forced: forcedGuards.length > 0, forcedGuards, fenceMs, detail: notOpen.length ? `fences not opened on ${notOpen.join(', ')}` : null }, warnings)
  step('unlock').status = 'done'
  return { ...common, outcome: 'done', to: next, steps, forcedGuards, fenceMs, reasons: [], warnings }
}
