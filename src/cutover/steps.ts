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
import { raiseFences } from './fence.js'
import { recoverIfNeeded } from './recovery.js'
import { acquireRunLock, appendAudit, defaultActor, publishStage, readLiveInstances, readRunLock, readStageState, writeDurableStage, type InstanceAck } from './switch-store.js'
import { nextState, planTransition, type MoveKind, type MoveTarget } from './transitions.js'
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
}

/** The steps a move takes, with their descriptions (pure: the dry-run twin). */
export function describeSteps(from: StageState, to: MoveTarget, o: { primaries: readonly string[]; writePrimarySwitch: boolean; ackTimeoutMs: number; drainTimeoutMs: number }): StepReport[] {
  const v = from.version + 1
  const s = (step: StepName, description: string): StepReport => ({ step, description, status: 'planned' })
  return [
    s('lock', 'take the cutover run lock (refused if another move runs)'),
    s('guards', 'check the guards of this move (overridden only with --force --reason, recorded)'),
    s('raise-fences', `raise the write fence on ${o.primaries.length} primary database(s) (${o.primaries.join(', ')}): wait for writes in flight, hold new ones`),
    s('publish', `publish ${to.stage}${to.stage === 'read-shards' ? ` at ${to.readPercent}% reads` : ''} as stage version ${v} in Redis (pub/sub)`),
    s('await-acks', `wait up to ${o.ackTimeoutMs} ms for every live instance to acknowledge version ${v}; otherwise abort and restore ${from.stage} as version ${v + 1}`),
    ...(o.writePrimarySwitch ? [s('drain-journal', `drain the dual-write journal inside the fence (up to ${o.drainTimeoutMs} ms; abort and restore if entries remain)`)] : []),
    s('record', `write version ${v} to the durable copy in the control database (the commit point)`),
    s('open-fences', `open every fence at version ${v}: writes resume under ${to.stage}; writes planned at version ${from.version} are refused (retryable)`),
    s('unlock', 'release the run lock and append the audit row'),
  ]
}

async function awaitAcks(rt: Runtime, version: number, timeoutMs: number, signal?: AbortSignal): Promise<{ ok: boolean; behind: InstanceAck[]; instances: InstanceAck[] }> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const instances = await readLiveInstances(rt.redis(), rt.config.redis.keyPrefix)
    const behind = instances.filter((a) => a.version < version)
    if (behind.length === 0) return { ok: true, behind, instances }
    if (performance.now() >= deadline || signal?.aborted) return { ok: false, behind, instances }
    await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * Moves the stage one step (or one ramp step at read-shards).
 *
 * Give it a runtime of its own (as `shardctl cutover` has, in its own
 * process), not the one whose pools serve a DualWriteStore taking traffic:
 * while the fences are raised every waiting write holds one of those pools'
 * connections, and the drain could find none free for its copies.
 * @throws ShardkitError `USAGE` (--force without --reason), `ALREADY_RUNNING` (exit 5), `PRECONDITION_FAILED` (not provisioned), `REDIS_ERROR`/driver errors
 * @example const r = await moveStage(rt, { kind: 'advance', reason: 'backfill verified' })
 */
export async function moveStage(rt: Runtime, o: MoveOptions): Promise<MoveResult> {
  if (o.force && !o.reason?.trim()) throw new ShardkitError('USAGE', '--force needs --reason "..." saying why the guards are overridden (it is recorded)', { argument: '--reason' })
  const now = o.now ?? (() => new Date())
  const actor = o.actor ?? defaultActor()
  const ackTimeoutMs = o.ackTimeoutMs ?? 2_000
  const drainTimeoutMs = o.drainTimeoutMs ?? 5_000
  const primaries = primaryDatabases(rt.config).map((p) => p.name)
  const base = { kind: o.kind, forcedGuards: [] as string[], fenceMs: null, instances: [] as InstanceAck[] }

  if (o.dryRun) {
    const from = await readStageState(rt)
    const plan = planTransition(from, o.kind, o.percent)
    if (!plan.ok) return { ...base, outcome: 'refused', from, to: null, target: null, guards: [], steps: [], pointOfNoReturn: null, reasons: [plan.reason] }
    const inputs = await collectGuardInputs(rt, { kind: o.kind, state: from, target: plan.to }, o.readers)
    const guards = evaluateGuards(inputs)
    const holder = await readRunLock(rt)
    const reasons = [...guards.filter((g) => !g.ok).map((g) => g.reason!), ...(holder ? [`another move holds the run lock (${holder.actor} on ${holder.host} pid ${holder.pid})`] : [])]
    const steps = describeSteps(from, plan.to, { primaries, writePrimarySwitch: plan.writePrimarySwitch, ackTimeoutMs, drainTimeoutMs })
    return { ...base, outcome: 'dry-run', from, to: null, target: plan.to, guards, steps, pointOfNoReturn: plan.pointOfNoReturn, reasons, instances: inputs.instances.ok ? inputs.instances.value : [] }
  }

  const lock = await acquireRunLock(rt, actor).catch((err: unknown) => {
    if (err instanceof ShardkitError) throw err
    throw new ShardkitError('REDIS_ERROR', `cannot take the cutover run lock: Redis (${rt.config.redis.keyPrefix}) did not answer; the stage lives in Redis and cannot move without it. Check redis.url, then retry`, {}, { cause: err, retryable: true })
  })
  try {
    await phase('cutover.locked', { kind: o.kind })
    const recovered = await recoverIfNeeded(rt, { actor, ackTimeoutMs, now })
    if (recovered) {
      return { ...base, outcome: 'recovered', from: recovered.from, to: recovered.to, target: null, guards: [], steps: [], pointOfNoReturn: null, reasons: [recovered.reason], fenceMs: recovered.fenceMs }
    }
    const from = await readStageState(rt)
    const audit = { actor, action: o.kind, reason: o.reason ?? null, from }
    const plan = planTransition(from, o.kind, o.percent)
    if (!plan.ok) {
      await appendAudit(rt, { ...audit, outcome: 'refused', to: null, forced: false, forcedGuards: [], fenceMs: null, detail: plan.reason })
      return { ...base, outcome: 'refused', from, to: null, target: null, guards: [], steps: [], pointOfNoReturn: null, reasons: [plan.reason] }
    }
    const steps = describeSteps(from, plan.to, { primaries, writePrimarySwitch: plan.writePrimarySwitch, ackTimeoutMs, drainTimeoutMs })
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

    const t0 = performance.now()
    let raised: Awaited<ReturnType<typeof raiseFences>>
    try {
      raised = await timed('raise-fences', () => raiseFences(rt, { currentVersion: from.version, timeoutMs: ackTimeoutMs }))
    } catch (err) {
      if (isShardkitError(err, 'PRECONDITION_FAILED')) throw err
      // Nothing was published: the fences rolled back to where they were.
      const detail = `could not raise the fences: ${(err as Error).message}`
      await appendAudit(rt, { ...audit, outcome: 'aborted', to: from, forced: forcedGuards.length > 0, forcedGuards, fenceMs: performance.now() - t0, detail })
      return { ...common, outcome: 'aborted', to: from, steps, forcedGuards, fenceMs: performance.now() - t0, reasons: [detail] }
    }
    const next = nextState(from, plan.to, now())
    let abortReason: string | undefined
    try {
      await phase('cutover.fences-raised', { kind: o.kind, from: from.version, to: next.version })
      await timed('publish', () => publishStage(rt, next))
      await phase('cutover.published', { kind: o.kind, from: from.version, to: next.version })
      const acks = await timed('await-acks', () => awaitAcks(rt, next.version, ackTimeoutMs, o.signal))
      if (!acks.ok) {
        step('await-acks').status = 'failed'
        abortReason = o.signal?.aborted
          ? 'interrupted while waiting for the instances'
          : `${acks.behind.length} live instance(s) did not acknowledge version ${next.version} within ${ackTimeoutMs} ms: ${acks.behind.map((a) => `${a.instanceId} at ${a.version}`).join(', ')}`
      } else if (plan.writePrimarySwitch) {
        await phase('cutover.acks-received', { kind: o.kind, from: from.version, to: next.version })
        const drained = await timed('drain-journal', () => drainJournal(rt, { signal: AbortSignal.timeout(drainTimeoutMs), logger: rt.logger }))
        if (drained.remaining > 0 || drained.failed > 0 || drained.unreachable.length > 0) {
          step('drain-journal').status = 'failed'
          abortReason = `the dual-write journal did not drain inside the fence (${drained.remaining} left${drained.unreachable.length ? `, unreachable: ${drained.unreachable.join(', ')}` : ''})`
        } else await phase('cutover.journal-drained', { kind: o.kind, from: from.version, to: next.version })
      } else await phase('cutover.acks-received', { kind: o.kind, from: from.version, to: next.version })
      if (abortReason === undefined) {
        // Fences committed raised at the new version first: a crash from here on leaves writes
        // refused until the next move recovers, never the old stage's fences open under a
        // durable copy that already names the new one.
        await raised.persist(next.version)
        await timed('record', () => writeDurableStage(rt, next, next.stage !== from.stage))
      }
    } catch (err) {
      abortReason = `${(err as Error).message}`
    }

    if (abortReason !== undefined) {
      // Before the commit point: the old stage comes back as a new version, so
      // instances that applied `next` move back and writes planned at it are refused.
      const restore: StageState = { stage: from.stage, readPercent: from.readPercent, version: next.version + 1, changedAt: now().toISOString() }
      await publishStage(rt, restore).catch((err) => rt.logger.error({ err: (err as Error).message }, 'cutover abort: cannot publish the restored stage; run the move again to recover'))
      await writeDurableStage(rt, restore, false).catch((err) => rt.logger.error({ err: (err as Error).message }, 'cutover abort: cannot write the durable copy'))
      const notOpen = await raised.open(restore.version)
      const fenceMs = performance.now() - t0
      const detail = abortReason + (notOpen.length ? `; fences not reopened on ${notOpen.join(', ')}` : '')
      rt.logger.warn({ from: from.stage, to: plan.to.stage, restored: restore.version, fenceMs: Math.round(fenceMs) }, `cutover aborted: ${detail}`)
      await appendAudit(rt, { ...audit, outcome: 'aborted', to: restore, forced: forcedGuards.length > 0, forcedGuards, fenceMs, detail })
      return { ...common, outcome: 'aborted', to: restore, steps, forcedGuards, fenceMs, reasons: [detail] }
    }

    await phase('cutover.recorded', { kind: o.kind, from: from.version, to: next.version })
    const notOpen = await timed('open-fences', () => raised.open(next.version))
    await phase('cutover.fences-opened', { kind: o.kind, from: from.version, to: next.version })
    const fenceMs = performance.now() - t0
    if (notOpen.length) step('open-fences').detail = `not opened on ${notOpen.join(', ')}: writes there are refused until the next move recovers them`
    rt.logger.info({ from: from.stage, to: next.stage, version: next.version, readPercent: next.readPercent, fenceMs: Math.round(fenceMs), forcedGuards }, 'cutover move done')
    await appendAudit(rt, { ...audit, outcome: 'done', to: next, forced: forcedGuards.length > 0, forcedGuards, fenceMs, detail: notOpen.length ? `fences not opened on ${notOpen.join(', ')}` : null })
    step('unlock').status = 'done'
    return { ...common, outcome: 'done', to: next, steps, forcedGuards, fenceMs, reasons: [] }
  } finally {
    await lock.release().catch(() => undefined)
  }
}
