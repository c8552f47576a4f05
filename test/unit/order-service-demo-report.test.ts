import { describe, expect, it } from 'vitest'
import { formatReport } from '../../examples/demo/report.js'
import type { RehearsalReport } from '../../examples/demo/rehearsal.js'

const base: RehearsalReport = {
  prefix: 'skdemo_0123abcd_',
  configPath: '/tmp/x/shardkit.json',
  orders: 1000,
  rps: 50,
  steps: [
    { step: 'cutover advance -> dual-write', ms: 40, ok: true, detail: 'now dual-write (v1)' },
    { step: 'backfill', ms: 2500, ok: true, detail: 'done' },
  ],
  stageMs: { legacy: 3000, 'dual-write': 4000 },
  verifies: [{ at: 'after backfill', clean: true, exitCode: 0, summary: {} }],
  fenceMs: 212,
  load: null,
  presence: null,
  removed: { databases: 10, redisKeys: 4 },
  totalMs: 9000,
  problems: [],
  ok: true,
}

describe('rehearsal report text', () => {
  it('shows steps, stage times, fence time, verify count and what was removed', () => {
    const t = formatReport(base)
    expect(t).toContain('PASSED in 9.0 s')
    expect(t).toMatch(/ok {3}backfill +2\.5 s {2}done/)
    expect(t).toMatch(/dual-write +4\.0 s/)
    expect(t).toContain('fence time (writes held at the write switch): 212 ms')
    expect(t).toContain('verify runs: 1, clean: 1')
    expect(t).toContain('removed: 10 databases, 4 Redis keys')
    expect(t).not.toContain('problems:')
  })

  it('says FAILED, lists the problems, and what was kept', () => {
    const t = formatReport({ ...base, ok: false, fenceMs: null, removed: null, problems: ['backfill: exit 1: boom'], steps: [{ step: 'backfill', ms: 10, ok: false, detail: 'exit 1: boom' }] })
    expect(t).toContain('FAILED in 9.0 s')
    expect(t).toContain('FAIL backfill')
    expect(t).toContain('  - backfill: exit 1: boom')
    expect(t).toContain('n/a (not reached)')
    expect(t).toContain('kept: databases skdemo_0123abcd_*, config /tmp/x/shardkit.json')
  })
})
