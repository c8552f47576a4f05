/** The rehearsal report's order-event line (pure): present with the check, absent without it. */
import { describe, expect, it } from 'vitest'
import { formatReport } from '../../examples/demo/report.js'
import type { RehearsalReport } from '../../examples/demo/rehearsal.js'

const base: RehearsalReport = {
  prefix: 'skdemo_0123abcd_',
  configPath: '/tmp/x/shardkit.json',
  orders: 1000,
  rps: 50,
  steps: [],
  stageMs: {},
  verifies: [],
  fenceMs: null,
  load: null,
  presence: null,
  removed: null,
  totalMs: 1000,
  problems: [],
  ok: true,
}

describe('rehearsal report: order events', () => {
  it('says how many acknowledged orders got their events exactly once in version order, and what was dropped', () => {
    const t = formatReport({
      ...base,
      events: {
        acknowledged: 812,
        exactlyOnceInOrder: 812,
        incomplete: [],
        disordered: [],
        handled: 2301,
        foreign: 0,
        consumer: { handled: 2301, duplicates: 4, stale: 0, gaps: 0, waited: 0, failures: 0, malformed: 0 },
        drainMs: 420,
        ok: true,
      },
    })
    expect(t).toContain('order events: 812/812 acknowledged orders received exactly once, in version order')
    expect(t).toContain('2301 events handled, 4 duplicate deliveries dropped, 0 stale, 0 gaps, 0 out of order')
    expect(t).toContain('drained 0.4 s after traffic stopped')
  })

  it('has no event line when the check did not run', () => {
    expect(formatReport(base)).not.toContain('order events:')
    expect(formatReport({ ...base, events: null })).not.toContain('order events:')
  })
})
