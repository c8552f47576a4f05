/**
 * The sections of the status document that derive from the control
 * database's job, checkpoint and verify records (pure): backfill (exact
 * rows, recent rate, ETA), verify per pair, settings, job runs, instances.
 * Every null they leave has its reason in `why`.
 */
import type { Checkpoint } from '../backfill/checkpoints.js'
import type { StageState } from '../cutover/stages.js'
import type { readLiveInstances } from '../cutover/switch-store.js'
import type { JobSettings } from '../jobs/settings.js'
import { etaSeconds, progressShare, projectedRate, recentRate } from '../jobs/rate.js'
import type { Pair } from '../verify/compare.js'
import type { JobProgressRow, Read, VerifyRunRow } from './sources.js'
import type { BackfillDimensionView, BackfillSection, InstancesSection, JobRunView, JobSettingsView, VerifyRunView, VerifySection, Why } from './document.js'

/** The pairs a verify can compare. */
export const PAIRS: readonly Pair[] = ['legacy-user', 'legacy-merchant', 'user-merchant']

/** The same reason for several fields. */
export function why(reason: string, ...fields: string[]): Why {
  return Object.fromEntries(fields.map((f) => [f, reason]))
}

/** The reason a value is missing because a source did not answer. */
export function unreachable(what: 'Redis' | 'the control database', error: string): string {
  return what === 'Redis' ? `Redis unreachable (${error}): shown from the control database` : `the control database is unreachable (${error})`
}

/** A control-database time as ISO 8601 (UTC). */
export function isoOf(v: unknown): string {
  const s = String(v)
  return s.includes('T') ? s : `${s.replace(' ', 'T')}Z`
}

/** A job's settings with the reasons for its blanks. */
export function settingsView(s: JobSettings): JobSettingsView {
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

/** A job's run as reported; a live run silent for `staleMs` is `stale`. */
export function jobView(p: JobProgressRow, staleMs: number): JobRunView {
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

/** The backfill section. */
export function backfillSection(cps: Read<Map<string, Checkpoint>>, settings: JobSettingsView | null, p: JobProgressRow | undefined, progressError: string | null, staleMs: number, controlError: string | null): BackfillSection {
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
  // A throttled job is projected at the pace it holds (a stall in the window is not its pace).
  const eta = complete ? 0 : state === 'running' ? etaSeconds(rowsDone, rowsTotal, rate === null ? null : projectedRate(p!.samples, p!.maxRowsPerSecond, rate)) : null
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

/** The verify section. */
export function verifySection(runs: Read<VerifyRunRow[]>, settings: JobSettingsView | null, p: JobProgressRow | undefined, staleMs: number, enteredAt: string | null, controlError: string | null): VerifySection {
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

/** The instances section. */
export function instancesView(instances: Read<Awaited<ReturnType<typeof readLiveInstances>>>, state: StageState): InstancesSection {
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
