/**
 * The rehearsal report as text (pure).
 */
import type { RehearsalReport } from './rehearsal.js'

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

/** Plain-text report for a terminal. */
export function formatReport(r: RehearsalReport): string {
  const out: string[] = []
  out.push('', `shardkit migration rehearsal: ${r.ok ? 'PASSED' : 'FAILED'} in ${secs(r.totalMs)}`, `  ${r.orders} legacy orders, ${r.rps} requests/s, databases ${r.prefix}*`)
  out.push('', 'steps:')
  for (const s of r.steps) out.push(`  ${s.ok ? 'ok  ' : 'FAIL'} ${s.step.padEnd(52)} ${secs(s.ms).padStart(8)}  ${s.detail.slice(0, 160)}`)
  const stages = Object.entries(r.stageMs)
  if (stages.length > 0) {
    out.push('', 'time per stage (under traffic):')
    for (const [k, v] of stages) out.push(`  ${k.padEnd(20)} ${secs(v).padStart(8)}`)
  }
  out.push('', `fence time (writes held at the write switch): ${r.fenceMs === null ? 'n/a (not reached)' : `${r.fenceMs} ms`}`)
  if (r.fences && r.fences.length > 0) {
    const s = [...r.fences].sort((a, b) => a - b)
    const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]
    out.push(`every move's fence (${s.length} attempts): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${s[s.length - 1]} ms (budget 1000 ms per attempt)`)
  }
  if (r.journalSettleMs !== undefined && r.journalSettleMs !== null) out.push(`journal after the write switch: nothing older than 1 s owed after ${r.journalSettleMs} ms (expected under 5000 ms)`)
  if (r.load) {
    const l = r.load
    out.push(`requests served: ${l.requests} in ${l.seconds} s; failed: ${l.errors} (expected 0); skipped ticks: ${l.skipped}; orders created: ${l.created}`)
    out.push(`latency ms: p50 ${l.latency.p50}, p90 ${l.latency.p90}, p99 ${l.latency.p99}, max ${l.latency.max}`)
  } else out.push('requests: no load report')
  out.push(`verify runs: ${r.verifies.length}, clean: ${r.verifies.filter((v) => v.clean).length} (expected all)`)
  if (r.presence) {
    const p = r.presence
    out.push(`acknowledged orders: ${p.acknowledged}; ${p.dimensions.map((d) => `${d.dimension}: ${d.exactlyOnce} exactly once, ${d.missing.length ? 'some' : '0'} missing, ${d.duplicated.length ? 'some' : '0'} duplicated, ${d.misplaced.length ? 'some' : '0'} misplaced`).join('; ')}`)
  }
  if (r.events) {
    const e = r.events
    const c = e.consumer
    out.push(`order events: ${e.exactlyOnceInOrder}/${e.acknowledged} acknowledged orders received exactly once, in version order; ${e.handled} events handled, ${c.duplicates} duplicate deliveries dropped, ${c.stale} stale, ${c.gaps} gaps, ${c.waited} out of order; drained ${secs(e.drainMs)} after traffic stopped`)
  }
  out.push(r.removed ? `removed: ${r.removed.databases} databases, ${r.removed.redisKeys} Redis keys` : `kept: databases ${r.prefix}*, config ${r.configPath}`)
  if (r.problems.length > 0) {
    out.push('', 'problems:')
    for (const p of r.problems) out.push(`  - ${p}`)
  }
  return `${out.join('\n')}\n`
}
