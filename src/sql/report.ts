/**
 * Plain-text rendering of lint reports and plans (the CLI prints the lines;
 * `--json` prints the objects themselves).
 */
import type { LintReport } from './linter.js'
import type { StatementPlan } from './planner.js'

const clip = (s: string, n: number): string => (s.length > n ? s.slice(0, n - 3) + '...' : s)

/** The lint table: one line per digest, most frequent first, then its suggestion; a summary at the end. */
export function renderLintTable(report: LintReport): string[] {
  const lines = [`${'COUNT'.padStart(9)}  ${'CLASS'.padEnd(11)}  ${'DIM'.padEnd(8)}  ${'SHARDS'.padStart(6)}  DIGEST`]
  for (const d of report.digests) {
    lines.push(`${String(d.count).padStart(9)}  ${d.class.padEnd(11)}  ${(d.dimension ?? '-').padEnd(8)}  ${(d.shards === null ? '-' : String(d.shards)).padStart(6)}  ${clip(d.digest, 100)}`)
    const why = d.reasons.length > 0 ? `[${d.reasons.join(', ')}] ` : ''
    lines.push(`${' '.repeat(11)}-> ${why}${d.error ? 'parser: ' + clip(d.error, 120) : d.suggestion}`)
    // a digest whose statements differ (IN (5, 5) and IN (1, 2, 3)) shows how many fell in each class
    const classes = Object.entries(d.classes ?? {})
    if (classes.length > 1) lines.push(`${' '.repeat(11)}   statements by class: ${classes.map(([c, n]) => `${c} ${n}`).join(', ')}`)
  }
  lines.push('')
  lines.push('summary: ' + Object.entries(report.summary).map(([cls, s]) => `${cls} ${s.digests} digests / ${s.statements} statements`).join(', '))
  if (report.overflowStatements > 0) lines.push(`(${report.overflowStatements} statements had digests past the digest limit and are counted only here)`)
  return lines
}

/** The plan of one statement, for people. */
export function renderPlan(plan: StatementPlan): string[] {
  const lines = [`class:     ${plan.class}${plan.dimension ? ` (dimension ${plan.dimension})` : ''}`]
  if (plan.reasons.length > 0) lines.push(`reasons:   ${plan.reasons.join(', ')}`)
  if (plan.error) lines.push(`parser:    ${plan.error}`)
  lines.push(`stage:     ${plan.stage}: served by ${plan.servedBy} (${plan.servedNote})`)
  if (plan.lookup) lines.push('shards:    a legacy order id: its shard is found through the lookup table at run time')
  else if (plan.shards === null) lines.push('shards:    unknown until the key values are given (--params)')
  else lines.push(`shards:    ${plan.shards.length === 120 ? 'all 120' : plan.shards.join(', ')} (${plan.shards.length} logical)`)
  const shown = plan.targets.slice(0, 8)
  for (const t of shown) lines.push(`  ${t.dimension} #${t.shard} -> ${t.host} ${t.database}.${t.table}: ${t.sql}`)
  if (plan.targets.length > shown.length) lines.push(`  ... and ${plan.targets.length - shown.length} more targets (--json lists them all)`)
  if (plan.merge) lines.push(`merge:     ${plan.merge}`)
  lines.push(`suggest:   ${plan.suggestion}`)
  return lines
}
