/**
 * What is wrong and what to do next (pure, over the status document): the
 * two lines an on-call engineer reads first. Problems are ordered by
 * urgency: sources that do not answer, a stage that disagrees with itself,
 * instances behind, broken shards, then backlogs.
 */
import type { StatusDocument } from './document.js'

type Doc = Omit<StatusDocument, 'problems' | 'nextStep' | 'buildMs'>

/** A journal entry older than this means a secondary keeps failing. */
export const JOURNAL_AGE_PROBLEM_MS = 30_000
/** An unpublished event older than this means the relay is behind or gone. */
export const OUTBOX_LAG_PROBLEM_MS = 60_000

function secs(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`
}

/** Everything wrong, most urgent first (empty when all is well). */
export function problemsOf(d: Doc): string[] {
  const out: string[] = []
  if (!d.sources.redis.ok) out.push(`Redis unreachable (${d.sources.redis.error}): instances cannot follow or acknowledge stage changes and report not ready; the stage shown is the control database's copy`)
  if (!d.sources.controlDb.ok) out.push(`the control database is unreachable (${d.sources.controlDb.error}): backfill, verify and job settings cannot be read, and no move can commit`)
  if (d.stage.problem && d.sources.redis.ok && d.sources.controlDb.ok) out.push(`stage: ${d.stage.problem}; the next \`shardctl cutover advance\` or \`rollback\` recovers it`)
  if (d.instances.list && d.instances.behind) {
    const behind = d.instances.list.filter((i) => !i.acknowledged)
    out.push(`${behind.length} instance(s) have not applied stage v${d.stage.version}: ${behind.map((i) => `${i.instanceId} (v${i.version})`).join(', ')}`)
  }
  const job = d.backfill.job
  if (d.backfill.state === 'failed' && job) out.push(`backfill failed (${job.message ?? 'see its log'}) on ${job.host} pid ${job.pid}: fix the cause, then \`shardctl backfill\` resumes from the checkpoint`)
  if (d.backfill.state === 'stale' && job) out.push(`backfill on ${job.host} pid ${job.pid} has not reported for ${secs(job.reportAgeMs)}: if it died, \`shardctl backfill\` resumes from the checkpoint`)
  if (d.verify.job?.state === 'stale') out.push(`verify on ${d.verify.job.host} pid ${d.verify.job.pid} has not reported for ${secs(d.verify.job.reportAgeMs)}`)
  const errs = [...d.shards.user, ...d.shards.merchant].filter((s) => s.state === 'error')
  if (errs.length) out.push(`${errs.length} shard(s) in error: ${[...new Set(errs.map((s) => s.reason))].slice(0, 3).join('; ')}`)
  const mism = d.shards.counts.all.mismatch
  if (mism) out.push(`${mism} shard(s) with verify differences: \`shardctl verify --report diff.json\`, then \`shardctl repair --report diff.json --execute\``)
  for (const p of d.primaries) {
    if (p.journalOldestAgeMs !== null && p.journalOldestAgeMs > JOURNAL_AGE_PROBLEM_MS) out.push(`journal on ${p.primary}: ${p.journalDepth} entries, the oldest ${secs(p.journalOldestAgeMs)} old: a secondary keeps failing (\`shardctl dualwrite status\`, \`shardctl dualwrite drain\`)`)
  }
  if (d.outbox.lagMs !== null && d.outbox.lagMs > OUTBOX_LAG_PROBLEM_MS) {
    out.push(`outbox: ${d.outbox.depth} events unpublished, the oldest ${secs(d.outbox.lagMs)} old${d.outbox.relayHolders.length ? '' : ': no relay holds a lease (start `shardctl events relay`)'}`)
  }
  return out
}

/** The one thing to do next. */
export function nextStepOf(d: Doc, problems: readonly string[]): string {
  if (problems.length) return `fix first: ${problems[0]}`
  if (d.runLock.holder) return `wait: a cutover move by ${d.runLock.holder.actor} is running`
  const b = d.backfill
  const verifiedHere = (d.verify.last?.clean ?? false) && d.verify.last?.countsForStage === true
  switch (d.stage.stage) {
    case 'legacy':
      return 'start dual writes: `shardctl cutover advance` (to dual-write)'
    case 'dual-write':
      if (b.state === 'not-started') return 'copy the history: `shardctl backfill`'
      if (b.state === 'running') return `wait for the backfill${b.etaSeconds !== null ? ` (ETA ${secs(b.etaSeconds * 1000)})` : ''}`
      if (b.state === 'paused') return 'the backfill is paused: `shardctl backfill resume`'
      if (b.state !== 'complete') return 'resume the backfill from its checkpoint: `shardctl backfill`'
      return verifiedHere ? 'advance to shadow reads: `shardctl cutover advance`' : 'prove the copy: `shardctl verify`'
    case 'shadow-read':
      return verifiedHere ? 'advance to reading from the shards: `shardctl cutover advance --percent 1`' : 'verify at this stage: `shardctl verify`'
    case 'read-shards':
      if (d.stage.readPercent < 100) return `ramp the reads up: \`shardctl cutover advance --percent ${Math.min(100, d.stage.readPercent * 2 > 100 ? 100 : Math.max(d.stage.readPercent * 2, 10))}\``
      return verifiedHere ? 'switch writes to the shards (asks for confirmation): `shardctl cutover advance`' : 'verify before the write switch: `shardctl verify`'
    case 'write-shards':
      return verifiedHere ? 'retire legacy (the point of no return, asks for confirmation): `shardctl cutover advance`' : 'verify legacy is still current: `shardctl verify`'
    case 'shards':
      return 'the migration is complete: the shards hold every order; legacy receives no writes'
  }
}
