/**
 * `readStatus`: builds the status document (src/status/document.ts) from
 * every source at once, each read bounded in time, none able to fail the
 * whole: a source that does not answer leaves its fields null, each with the
 * reason. Reads take no lock and write nothing, so status is safe to run
 * every second from a watch, the page and a Prometheus scrape together.
 */
import type { Runtime } from '../runtime/runtime.js'
import { readCheckpoints, type Checkpoint } from '../backfill/checkpoints.js'
import { isMissingTable } from '../runtime/mysql-errors.js'
import { STAGES, type StageState } from '../cutover/stages.js'
import { INITIAL_STAGE_STATE } from '../cutover/transitions.js'
import { inconsistency } from '../cutover/recovery.js'
import { readDurableStage, readLiveInstances, readRedisStage, readRunLock } from '../cutover/switch-store.js'
import type { FenceReading } from '../cutover/fence.js'
import { readRelayLeases } from '../events/relay-lease.js'
import { readAllJobSettings } from '../jobs/settings.js'
import { bounded, pingHosts, readJobProgress, readLastStageChange, readPrimaries, readRecentVerifyRuns } from './sources.js'
import { countStates, shardViews } from './shards.js'
import { backfillSection, instancesView, isoOf, settingsView, unreachable, verifySection, why } from './sections.js'
import { STATUS_SCHEMA_VERSION, type JobSettingsView, type PrimaryView, type StatusDocument, type VerifyRunView, type Why } from './document.js'
import { nextStepOf, problemsOf } from './advice.js'

/** Options of {@link readStatus}. */
export interface StatusOptions {
  /** Bound on each source (default 3000 ms). */
  readonly timeoutMs?: number
  /** A running job silent this long is shown `stale` (default 15 s). */
  readonly staleJobMs?: number
}

/**
 * Reads the whole status. Never throws for a source that does not answer.
 * @example const { stage, backfill } = await readStatus(rt) // stage.stage 'dual-write', backfill.percent 42.5
 */
export async function readStatus(rt: Runtime, opts: StatusOptions = {}): Promise<StatusDocument> {
  const t0 = performance.now()
  const T = opts.timeoutMs ?? 3_000
  const prefix = rt.config.redis.keyPrefix
  const primaryHosts = new Set(['legacy', ...rt.config.dimensions.user.shards.map((p) => p.host)])
  const otherHosts = Object.keys(rt.config.hosts).filter((h) => !primaryHosts.has(h))
  const [redisStage, instances, lock, durable, checkpoints, settings, progress, runs, leases, entry, primaries, pings] = await Promise.all([
    bounded(T, () => readRedisStage(rt.redis(), prefix)),
    bounded(T, () => readLiveInstances(rt.redis(), prefix)),
    bounded(T, () => readRunLock(rt)),
    bounded(T, () => readDurableStage(rt)),
    bounded(T, () => readCheckpoints(rt.control(), rt.config.control.database).catch((err) => (isMissingTable(err) ? new Map<string, Checkpoint>() : Promise.reject(err)))),
    bounded(T, () => readAllJobSettings(rt)),
    bounded(T, () => readJobProgress(rt)),
    bounded(T, () => readRecentVerifyRuns(rt)),
    bounded(T, () => readRelayLeases(rt)),
    bounded(T, () => readLastStageChange(rt)),
    readPrimaries(rt, T),
    pingHosts(rt, otherHosts, T),
  ])

  const controlError = durable.ok ? null : durable.error
  const redisError = redisStage.ok ? null : redisStage.error
  const r = redisStage.ok ? redisStage.value : undefined
  const d = durable.ok ? durable.value?.state : undefined
  const state: StageState = r ?? d ?? INITIAL_STAGE_STATE
  const fences: FenceReading[] = primaries.map((p) => ({ primary: p.primary.name, database: p.primary.database, version: p.fence.version, state: p.fence.state }))
  const stageWhy: Why = {}
  const enteredAt = durable.ok ? (durable.value?.stageEnteredAt ?? null) : null
  if (enteredAt === null) stageWhy.enteredAt = controlError ? unreachable('the control database', controlError) : 'no stage change recorded yet (the fleet is at its first stage)'
  let enteredBy: string | null = null
  if (entry.ok && entry.value && entry.value.toStage === state.stage) enteredBy = entry.value.actor
  else stageWhy.enteredBy = !entry.ok ? unreachable('the control database', entry.error) : entry.value ? `the last recorded stage change went to ${entry.value.toStage}; ${state.stage} was restored by a recovery` : 'no stage change recorded yet'
  let problem: string | null = null
  if (redisError) problem = `Redis is unreachable (${redisError}): instances keep their last stage and report not ready`
  else if (controlError) problem = `the control database is unreachable (${controlError}): the durable stage copy cannot be read`
  else problem = inconsistency(r, d, fences) ?? null
  // Mid-move, Redis, the durable copy and the fences disagree by design until the commit point.
  const moving = lock.ok && lock.value ? lock.value : null
  if (problem !== null && moving && !redisError && !controlError) {
    stageWhy.problem = `a cutover move by ${moving.actor} is in progress (${problem}); they agree again once it commits or aborts`
    problem = null
  } else if (problem === null) stageWhy.problem = 'Redis, the durable copy and every fence agree'

  const settingsOf = (job: 'backfill' | 'verify'): JobSettingsView | null => (settings.ok ? settingsView(settings.value[job]) : null)
  const progressOf = (job: 'backfill' | 'verify') => (progress.ok ? progress.value.get(job) : undefined)
  const staleMs = opts.staleJobMs ?? 15_000
  const backfill = backfillSection(checkpoints, settingsOf('backfill'), progressOf('backfill'), progress.ok ? null : progress.error, staleMs, controlError)
  const verify = verifySection(runs, settingsOf('verify'), progressOf('verify'), staleMs, enteredAt, controlError)

  const hostErrors = new Map<string, string>()
  for (const p of primaries) if (p.error && p.error !== 'NOT_PROVISIONED') hostErrors.set(p.primary.host === 'legacy' ? 'legacy' : p.primary.host, p.error)
  for (const [h, e] of pings) if (e) hostErrors.set(h, e)
  const dimFacts = (dim: 'user' | 'merchant') => {
    const cp = checkpoints.ok ? checkpoints.value.get(dim) : undefined
    const own = verify.pairs[dim === 'user' ? 'legacy-user' : 'legacy-merchant']
    const retired = verify.pairs['user-merchant']
    const v = [own, retired].filter((x): x is VerifyRunView => x !== null).sort((a, b) => Date.parse(b.finishedAt) - Date.parse(a.finishedAt))[0]
    const row = v && runs.ok ? runs.value.find((x) => x.runId === v.runId) : undefined
    return shardViews({
      dimension: dim,
      shards: rt.config.dimensions[dim].shards,
      backfill: checkpoints.ok ? { state: cp ? (cp.state === 'complete' ? 'complete' : 'running') : 'not-started', completedAt: cp?.completedAt ? isoOf(cp.completedAt) : null } : null,
      job: backfill.job ? { state: backfill.job.state, message: backfill.job.message, percent: backfill.percent } : null,
      verify: v ? { startedAt: v.startedAt, clean: v.clean, differences: v.differences, byShard: row?.byShard?.[dim] ?? null, runId: v.runId } : null,
      hostErrors,
    })
  }
  const user = dimFacts('user')
  const merchant = dimFacts('merchant')
  const counts = { user: countStates(user), merchant: countStates(merchant), all: countStates([...user, ...merchant]) }

  const leaseOf = (name: string) => (leases.ok ? leases.value.find((l) => l.outbox === name) : undefined)
  const primaryViews: PrimaryView[] = primaries.map((p) => {
    const w: Why = {}
    const l = leaseOf(p.primary.name)
    const unread = p.error ? (p.error === 'NOT_PROVISIONED' ? 'a shardkit table is missing here: run `shardctl provision`' : `host ${p.primary.host} does not answer (${p.error})`) : null
    if (!p.journal) Object.assign(w, why(unread ?? 'journal not read', 'journalDepth', 'journalOldestAgeMs'))
    else if (p.journal.oldestAgeMs === null) w.journalOldestAgeMs = 'the journal is empty'
    if (!p.outbox) Object.assign(w, why(unread ?? 'outbox not read', 'outboxDepth', 'outboxOldestAgeMs', 'outboxPublishedLastMinute'))
    else if (p.outbox.oldestAgeMs === null) w.outboxOldestAgeMs = 'nothing waits to be published'
    if (!l) w.relay = leases.ok ? 'no relay has ever held this outbox' : unreachable('the control database', leases.error)
    if (!p.error) w.error = 'answered'
    if (p.fence.version === null) w['fence.version'] = p.fence.state === 'missing' ? 'no fence row: run `shardctl provision`' : `host ${p.primary.host} does not answer`
    return {
      primary: p.primary.name,
      side: p.primary.side,
      host: p.primary.host,
      journalDepth: p.journal?.depth ?? null,
      journalOldestAgeMs: p.journal?.oldestAgeMs ?? null,
      outboxDepth: p.outbox?.depth ?? null,
      outboxOldestAgeMs: p.outbox?.oldestAgeMs ?? null,
      outboxPublishedLastMinute: p.outbox?.publishedLastMinute ?? null,
      relay: l ? { holder: l.holder, token: l.token, expiresInMs: l.expiresInMs } : null,
      fence: p.fence,
      error: p.error,
      why: w,
    }
  })
  const unread = primaryViews.filter((p) => p.journalDepth === null)
  const ages = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null)
  const jAges = ages(primaryViews.map((p) => p.journalOldestAgeMs))
  const oAges = ages(primaryViews.map((p) => p.outboxOldestAgeMs))
  const partial = unread.length ? `${unread.length} primary database(s) did not answer (${unread.map((p) => p.primary).join(', ')}): a partial sum would hide entries` : null
  const outUnread = primaryViews.filter((p) => p.outboxDepth === null)
  const outPartial = outUnread.length ? `${outUnread.length} outbox(es) not read (${outUnread.map((p) => p.primary).join(', ')})` : null
  const journal = {
    depth: partial ? null : primaryViews.reduce((n, p) => n + p.journalDepth!, 0),
    oldestAgeMs: partial ? null : jAges.length ? Math.max(...jAges) : null,
    why: partial ? why(partial, 'depth', 'oldestAgeMs') : jAges.length ? {} : why('the journal is empty everywhere', 'oldestAgeMs'),
  }
  const outbox = {
    depth: outPartial ? null : primaryViews.reduce((n, p) => n + p.outboxDepth!, 0),
    lagMs: outPartial ? null : oAges.length ? Math.max(...oAges) : null,
    publishedLastMinute: outPartial ? null : primaryViews.reduce((n, p) => n + p.outboxPublishedLastMinute!, 0),
    relayHolders: [...new Set(leases.ok ? leases.value.filter((l) => l.holder && l.expiresInMs > 0).map((l) => l.holder) : [])].sort(),
    why: outPartial ? why(outPartial, 'depth', 'lagMs', 'publishedLastMinute') : oAges.length ? {} : why('nothing waits to be published', 'lagMs'),
  }

  const instancesSection = instancesView(instances, state)
  const runLock = lock.ok
    ? { holder: lock.value ?? null, why: lock.value ? {} : why('no cutover move is running', 'holder') }
    : { holder: null, why: why(`the run lock cannot be read (${lock.error}); a move may or may not be running`, 'holder') }

  const doc: Omit<StatusDocument, 'problems' | 'nextStep' | 'buildMs'> = {
    schemaVersion: STATUS_SCHEMA_VERSION,
    generatedAt: new Date().toISOString(),
    sources: {
      controlDb: { ok: controlError === null, error: controlError, why: controlError ? {} : why('answered', 'error') },
      redis: { ok: redisError === null, error: redisError, why: redisError ? {} : why('answered', 'error') },
    },
    stage: {
      stage: state.stage,
      version: state.version,
      readPercent: state.readPercent,
      changedAt: state.changedAt,
      enteredAt,
      enteredBy,
      source: r ? 'redis' : d ? 'control-db' : 'default',
      stages: STAGES,
      problem,
      why: stageWhy,
    },
    instances: instancesSection,
    runLock,
    backfill,
    verify,
    shards: { user, merchant, counts },
    primaries: primaryViews,
    journal,
    outbox,
    moves: { inProgress: null, why: why('shard moves are not part of this version (there is no `shardctl move` yet)', 'inProgress') },
    schemaChanges: { inProgress: null, why: why('schema changes are not part of this version (there is no `shardctl schema` yet)', 'inProgress') },
  }
  const problems = problemsOf(doc)
  return { ...doc, buildMs: Math.round(performance.now() - t0), problems, nextStep: nextStepOf(doc, problems) }
}
