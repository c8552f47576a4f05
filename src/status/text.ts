/**
 * The status document as text for a terminal (pure): a gh-ost style summary
 * line, the two shard rows as 120 glyphs each (a glyph per state, so it reads
 * without colour), then each section with the reason for every blank.
 */
import { SHARD_STATES, type ShardState, type StatusDocument, type Why } from './document.js'

/** One ASCII glyph per shard state (the page uses the same letters in its legend). */
export const SHARD_GLYPHS: Record<ShardState, string> = { pending: '.', copying: '>', copied: '=', verified: '#', mismatch: '!', error: 'X', paused: 'P' }

function dur(s: number | null): string {
  if (s === null) return '-'
  if (s < 120) return `${Math.round(s)}s`
  if (s < 7200) return `${Math.round(s / 60)}m`
  return `${(s / 3600).toFixed(1)}h`
}

function ms(v: number | null): string {
  return v === null ? '-' : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`
}

function or(v: unknown, w: Why, field: string): string {
  return v === null || v === undefined ? `- (${w[field] ?? 'unknown'})` : String(v)
}

const n = (x: number) => x.toLocaleString('en-US')

/** The one-line summary (also the watch's first line). */
export function summaryLine(d: StatusDocument): string {
  const b = d.backfill
  const copy = b.rowsTotal !== null && b.rowsDone !== null ? `${n(b.rowsDone)}/${n(b.rowsTotal)} ${b.percent}%` : `${b.state}`
  const c = d.shards.counts
  const v = d.verify.last
  const verify = v ? `${v.clean ? 'clean' : `${v.differences} differences`} ${v.mode}` : 'none'
  const rate = b.rowsPerSecond === null ? '' : `; Rate: ${n(b.rowsPerSecond)} rows/s`
  return `Stage: ${d.stage.stage}${d.stage.stage === 'read-shards' ? ` ${d.stage.readPercent}%` : ''} v${d.stage.version}; Copy: ${copy}${rate}; ETA: ${b.etaSeconds === null ? 'N/A' : dur(b.etaSeconds)}; Shards: U ${c.user.verified}/120 M ${c.merchant.verified}/120 verified; Verify: ${verify}; Journal: ${d.journal.depth ?? '?'}; Outbox lag: ${ms(d.outbox.lagMs)}`
}

/** The whole document as lines of text. */
export function renderStatusText(d: StatusDocument): string[] {
  const out: string[] = []
  const b = d.backfill
  out.push(summaryLine(d))
  out.push('')
  const src = `${d.stage.source}${d.sources.redis.ok ? '' : `, REDIS UNREACHABLE (${d.sources.redis.error})`}${d.sources.controlDb.ok ? '' : `, CONTROL DB UNREACHABLE (${d.sources.controlDb.error})`}`
  out.push(`stage        ${d.stage.stages.map((s) => (s === d.stage.stage ? `[${s}]` : s)).join(' > ')}  v${d.stage.version} (from ${src})`)
  out.push(`entered      ${or(d.stage.enteredAt, d.stage.why, 'enteredAt')} by ${or(d.stage.enteredBy, d.stage.why, 'enteredBy')}`)
  if (d.instances.list === null) out.push(`instances    - (${d.instances.why.list})`)
  else {
    out.push(`instances    ${d.instances.live} live, ${d.instances.behind} behind`)
    for (const i of d.instances.list) out.push(`  ${i.instanceId}  v${i.version}${i.acknowledged ? '' : ' BEHIND'}  ${i.host ?? '-'} pid ${i.pid ?? '-'}  heartbeat ${ms(i.heartbeatAgeMs)} ago`)
  }
  const h = d.runLock.holder
  out.push(`run lock     ${h ? `${h.actor} on ${h.host} pid ${h.pid} since ${h.since}` : `- (${d.runLock.why.holder})`}`)
  out.push(`backfill     ${b.state}${b.rowsDone !== null ? `: ${n(b.rowsDone)} of ${b.rowsTotal === null ? `? (${b.why.rowsTotal})` : n(b.rowsTotal)} rows${b.percent !== null ? ` (${b.percent}%)` : ''}` : ''}`)
  out.push(`  rate       ${b.rowsPerSecond === null ? `- (${b.why.rowsPerSecond})` : `${n(b.rowsPerSecond)} rows/s (last minute)`}; ETA ${b.etaSeconds === null ? `- (${b.why.etaSeconds})` : `${dur(b.etaSeconds)} (${b.etaAt})`}`)
  if (b.job) out.push(`  job        ${b.job.state} on ${b.job.host} pid ${b.job.pid}, ${b.job.chunks} chunks, chunk ${b.job.chunkSize ?? '-'}, concurrency ${b.job.concurrency ?? '-'}, reported ${ms(b.job.reportAgeMs)} ago`)
  if (b.settings) out.push(`  settings   ${b.settings.paused ? 'PAUSED, ' : ''}max ${b.settings.maxRowsPerSecond ?? 'unthrottled'} rows/s, chunk ${b.settings.chunkSize ?? 'auto'}, concurrency ${b.settings.concurrency ?? 'default'}`)
  out.push(`shards       ${SHARD_STATES.map((s) => `${SHARD_GLYPHS[s]} ${s} ${d.shards.counts.all[s]}`).join('  ')}`)
  out.push(`  U ${d.shards.user.map((s) => SHARD_GLYPHS[s.state]).join('')}`)
  out.push(`  M ${d.shards.merchant.map((s) => SHARD_GLYPHS[s.state]).join('')}`)
  for (const [pair, v] of Object.entries(d.verify.pairs)) {
    out.push(`verify ${pair.padEnd(16)}${v ? `${v.clean ? 'clean' : `${v.differences} differences`}, ${v.mode}${v.since ? ` since ${v.since}` : ''}, finished ${v.finishedAt}${v.countsForStage === false ? ' (before this stage)' : ''}` : `- (${d.verify.why[`pairs.${pair}`]})`}`)
  }
  if (d.verify.job && (d.verify.job.state === 'running' || d.verify.job.state === 'paused')) out.push(`  verify job ${d.verify.job.state}: ${n(d.verify.rowsDone ?? 0)} rows compared${d.verify.rowsPerSecond !== null ? `, ${n(d.verify.rowsPerSecond)} rows/s` : ''}`)
  out.push(`journal      ${or(d.journal.depth, d.journal.why, 'depth')} entries, oldest ${d.journal.oldestAgeMs === null ? `- (${d.journal.why.oldestAgeMs})` : ms(d.journal.oldestAgeMs)}`)
  out.push(`outbox       ${or(d.outbox.depth, d.outbox.why, 'depth')} unpublished, lag ${d.outbox.lagMs === null ? `- (${d.outbox.why.lagMs})` : ms(d.outbox.lagMs)}, relay ${d.outbox.relayHolders.join(', ') || 'none'}`)
  for (const p of d.primaries) {
    if (p.error || (p.journalDepth ?? 0) > 0 || (p.outboxDepth ?? 0) > 0 || p.fence.state !== 'open') {
      out.push(`  ${p.primary}: journal ${p.journalDepth ?? '-'}, outbox ${p.outboxDepth ?? '-'}, fence ${p.fence.state}${p.fence.version === null ? '' : ` v${p.fence.version}`}${p.error ? ` (${p.error})` : ''}`)
    }
  }
  out.push(`moves        - (${d.moves.why.inProgress})`)
  for (const p of d.problems) out.push(`PROBLEM      ${p}`)
  out.push(`next         ${d.nextStep}`)
  out.push(`(generated ${d.generatedAt} in ${d.buildMs} ms)`)
  return out
}
