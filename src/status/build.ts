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
import { readAllJobSettings, type JobSettings } from '../jobs/settings.js'
import { etaSeconds, progressShare, recentRate } from '../jobs/rate.js'
import type { Pair } from '../verify/compare.js'
import { bounded, pingHosts, readJobProgress, readLastStageChange, readPrimaries, readRecentVerifyRuns, type JobProgressRow, type Read, type VerifyRunRow } from './sources.js'
import { countStates, shardViews } from './shards.js'
import {
  STATUS_SCHEMA_VERSION,
  type BackfillDimensionView,
  type BackfillSection,
  type InstancesSection,
  type JobRunView,
  type JobSettingsView,
  type PrimaryView,
  type StatusDocument,
  type VerifyRunView,
  type VerifySection,
  type Why,
} from './document.js'
import { nextStepOf, problemsOf } from './advice.js'

/** Options of {@link readStatus}. */
export interface StatusOptions {
  /** Bound on each source (default 1500 ms). */
  readonly timeoutMs?: number
  /** A running job silent this long is shown `stale` (default 15 s). */
  readonly staleJobMs?: number
}

const PAIRS: readonly Pair[] = ['legacy-user', 'legacy-merchant', 'user-merchant']

function why(reason: string, ...fields: string[]): Why {
  return Object.fromEntries(fields.map((f) => [f, reason]))
}

function unreachable(what: 'Redis' | 'the control database', error: string): string {
  return what === 'Redis' ? `Redis unreachable (${error}): shown from the control database` : `the control database is unreachable (${error})`
}

/**
 * Reads the whole status. Never throws for a source that does not answer.
 * @example const doc = await readStatus(rt); console.log(doc.stage.stage, doc.backfill.percent)
 */
export async function readStatus(rt: Runtime, opts: StatusOptions = {}): Promise<StatusDocument> {
  const t0 = performance.now()
  const T = opts.timeoutMs ?? 1_500
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

function isoOf(v: unknown): string {
  const s = String(v)
  return s.includes('T') ? s : `${s.replace(' ', 'T')}Z`
}

function settingsView(s: JobSettings): JobSettingsView {
  const w: Why = {}
  if (s.maxRowsPerSecond === null) w.maxRowsPerSecond = 'not throttled'
  if (s.chunkSize === null) w.chunkSize = 'the job chooses (its flag, or auto)'
  if (s.concurrency === null) w.concurrency = 'the job chooses (its flag)'
  if (s.updatedAt === null) Object.assign(w, why('never changed', 'updatedAt', 'updatedBy'))
  else if (s.updatedBy === null) w.updatedBy = 'not recorded'
  if (s.pausedAt === null) w.pausedAt = 'not paused'
  if (s.throttledAt === null) w.throttledAt = 'not throttled'
  return { paused: s.paused, maxRowsPerSecond: s.maxRowsPerSecond, chunkSize: s.chunkSize, concurrency: s.concurrency, updatedAt: s.updatedAt, updatedBy: s.updatedBy, pausedAt: s.pausedAt, throttledAt: s.throttledAt, why: w }
}

function jobView(p: JobProgressRow, staleMs: number): JobRunView {
  const live = p.state === 'running' || p.state === 'paused'
  const state = live && p.reportAgeMs > staleMs ? 'stale' : (p.state as JobRunView['state'])
  const w: Why = {}
  if (p.finishedAt === null) w.finishedAt = 'still running'
  if (p.chunkSize === null) w.chunkSize = 'no chunk reported yet'
  if (p.concurrency === null) w.concurrency = 'no chunk reported yet'
  if (p.maxRowsPerSecond === null) w.maxRowsPerSecond = 'not throttled'
  if (p.message === null) w.message = 'nothing to report'
  return {
    runId: p.runId, scope: p.scope, state, host: p.host, pid: p.pid, startedAt: p.startedAt, updatedAt: p.updatedAt, reportAgeMs: p.reportAgeMs, finishedAt: p.finishedAt,
    chunks: p.chunks, chunkSize: p.chunkSize, concurrency: p.concurrency, maxRowsPerSecond: p.maxRowsPerSecond, message: p.message, why: w,
  }
}

function backfillSection(cps: Read<Map<string, Checkpoint>>, settings: JobSettingsView | null, p: JobProgressRow | undefined, progressError: string | null, staleMs: number, controlError: string | null): BackfillSection {
  if (!cps.ok) {
    const reason = unreachable('the control database', controlError ?? cps.error)
    return { state: 'unknown', dimensions: null, rowsDone: null, rowsTotal: null, percent: null, rowsPerSecond: null, etaSeconds: null, etaAt: null, job: null, settings, why: why(reason, 'dimensions', 'rowsDone', 'rowsTotal', 'percent', 'rowsPerSecond', 'etaSeconds', 'etaAt', 'job', ...(settings ? [] : ['settings'])) }
  }
  const dim = (d: 'user' | 'merchant'): BackfillDimensionView => {
    const c = cps.value.get(d)
    const w: Why = {}
    if (!c) Object.assign(w, why('backfill not started', 'updatedAt', 'completedAt'))
    else if (!c.completedAt) w.completedAt = 'not complete'
    return { state: c ? (c.state === 'complete' ? 'complete' : 'running') : 'not-started', rowsCopied: c?.rowsCopied ?? 0, updatedAt: c ? isoOf(c.updatedAt) : null, completedAt: c?.completedAt ? isoOf(c.completedAt) : null, why: w }
  }
  const dimensions = { user: dim('user'), merchant: dim('merchant') }
  const job = p ? jobView(p, staleMs) : null
  const w: Why = {}
  if (!job) w.job = progressError ? `job reports cannot be read (${progressError})` : 'no backfill has run under job control yet'
  if (!settings) w.settings = 'job settings cannot be read'
  const states = [dimensions.user.state, dimensions.merchant.state]
  const complete = states.every((s) => s === 'complete')
  const notStarted = states.every((s) => s === 'not-started')
  const state: BackfillSection['state'] = complete ? 'complete' : notStarted ? 'not-started' : job ? (job.state === 'finished' ? 'stopped' : job.state === 'running' || job.state === 'paused' || job.state === 'failed' || job.state === 'stale' ? job.state : 'stopped') : 'stopped'
  if (notStarted) {
    return { state, dimensions, rowsDone: 0, rowsTotal: null, percent: null, rowsPerSecond: null, etaSeconds: null, etaAt: null, job, settings, why: { ...w, ...why('backfill not started', 'rowsTotal', 'percent', 'rowsPerSecond', 'etaSeconds', 'etaAt') } }
  }
  // The checkpoint is saved after every chunk (the job's report only once a second): the exact, current figure.
  const started = [dimensions.user, dimensions.merchant].filter((x) => x.state !== 'not-started')
  const rowsDone = Math.min(...started.map((x) => x.rowsCopied))
  const rowsTotal = job ? p!.rowsTotal : null
  if (rowsTotal === null) w.rowsTotal = job ? 'the backfill has not counted its key range yet' : 'the backfill ran without job control (a library call), so its total was not recorded'
  const share = complete ? 1 : progressShare(rowsDone, rowsTotal)
  const percent = share === null ? null : Math.round(share * 1000) / 10
  if (percent === null) w.percent = w.rowsTotal!
  let rate: number | null = null
  if (complete) w.rowsPerSecond = 'backfill complete'
  else if (state === 'paused') rate = 0
  else if (state === 'running') {
    rate = recentRate(p!.samples)
    if (rate === null) w.rowsPerSecond = 'measuring: fewer than two reports since the run or its settings changed'
  } else w.rowsPerSecond = `backfill ${state}: no rows are being copied`
  const eta = complete ? 0 : state === 'running' ? etaSeconds(rowsDone, rowsTotal, rate) : null
  if (eta === null) w.etaSeconds = state === 'paused' ? 'paused: no ETA until resumed' : state !== 'running' ? `backfill ${state}` : rate === 0 ? 'no rows copied in the last minute' : (w.rowsPerSecond ?? w.rowsTotal ?? 'no rate yet')
  const etaAt = eta === null ? null : new Date(Date.now() + eta * 1000).toISOString()
  if (etaAt === null) w.etaAt = w.etaSeconds!
  return { state, dimensions, rowsDone, rowsTotal, percent, rowsPerSecond: rate === null ? null : Math.round(rate), etaSeconds: eta === null ? null : Math.round(eta), etaAt, job, settings, why: w }
}

function pairsOf(r: VerifyRunRow): Pair[] {
  if (r.pairs) return r.pairs.filter((p): p is Pair => (PAIRS as readonly string[]).includes(p))
  return r.dimension === 'user' ? ['legacy-user'] : r.dimension === 'merchant' ? ['legacy-merchant'] : ['legacy-user', 'legacy-merchant']
}

function runView(r: VerifyRunRow, pair: Pair | null, enteredAt: string | null): VerifyRunView {
  const diffs = pair && r.byPair ? Object.values(r.byPair[pair] ?? {}).reduce((n, x) => n + Number(x), 0) : r.differences
  const w: Why = {}
  if (r.since === null) w.since = 'a full verify'
  if (enteredAt === null) w.countsForStage = 'no stage entry time recorded'
  return {
    runId: r.runId, mode: r.since === null ? 'full' : 'since', since: r.since, dimension: r.dimension, startedAt: r.startedAt, finishedAt: r.finishedAt,
    clean: pair && r.byPair ? diffs === 0 && (r.clean || diffs === 0) : r.clean, differences: diffs, rowsCompared: r.rowsCompared,
    countsForStage: enteredAt === null ? null : Date.parse(r.startedAt) >= Date.parse(enteredAt), why: w,
  }
}

function verifySection(runs: Read<VerifyRunRow[]>, settings: JobSettingsView | null, p: JobProgressRow | undefined, staleMs: number, enteredAt: string | null, controlError: string | null): VerifySection {
  const w: Why = {}
  const pairs = {} as Record<Pair, VerifyRunView | null>
  for (const pair of PAIRS) {
    const r = runs.ok ? runs.value.find((x) => pairsOf(x).includes(pair)) : undefined
    pairs[pair] = r ? runView(r, pair, enteredAt) : null
    if (!r) w[`pairs.${pair}`] = !runs.ok ? unreachable('the control database', controlError ?? runs.error) : pair === 'user-merchant' ? 'compared only once legacy is retired (stage shards)' : 'no verify has compared this pair yet'
  }
  const last = runs.ok && runs.value[0] ? runView(runs.value[0], null, enteredAt) : null
  if (!last) w.last = runs.ok ? 'no verify has run yet' : unreachable('the control database', controlError ?? runs.error)
  const job = p ? jobView(p, staleMs) : null
  if (!job) w.job = 'no verify has run under job control yet'
  const running = job?.state === 'running' || job?.state === 'paused'
  const rate = job?.state === 'paused' ? 0 : running ? recentRate(p!.samples) : null
  if (!running) Object.assign(w, why('no verify is running', 'rowsDone', 'rowsPerSecond'))
  else if (rate === null) w.rowsPerSecond = 'measuring: fewer than two reports'
  if (!settings) w.settings = 'job settings cannot be read'
  return { pairs, last, job, rowsDone: running ? p!.rowsDone : null, rowsPerSecond: rate === null ? null : Math.round(rate), settings, why: w }
}

function instancesView(instances: Read<Awaited<ReturnType<typeof readLiveInstances>>>, state: StageState): InstancesSection {
  if (!instances.ok) return { list: null, live: null, behind: null, why: why(`Redis unreachable (${instances.error}): live instances are known only to Redis`, 'list', 'live', 'behind') }
  const list = instances.value.map((a) => {
    const ttl = a.heartbeatTtlMs ?? null
    const w: Why = {}
    if (ttl === null) w.heartbeatAgeMs = 'this instance runs an older shardkit that does not report its heartbeat interval'
    if (a.host === null) w.host = 'not reported'
    if (a.pid === null) w.pid = 'not reported'
    if (a.stage === null) w.stage = 'not reported'
    return { instanceId: a.instanceId, version: a.version, stage: a.stage, host: a.host, pid: a.pid, acknowledged: a.version >= state.version, heartbeatAgeMs: ttl === null ? null : Math.max(0, ttl - a.expiresInMs), expiresInMs: a.expiresInMs, why: w }
  })
  return { list, live: list.length, behind: list.filter((i) => !i.acknowledged).length, why: {} }
}
