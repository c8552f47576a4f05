import { describe, expect, it } from 'vitest'
import { evaluateGuards, type GuardInputs } from '../../src/cutover/guards.js'
import type { StageState } from '../../src/cutover/stages.js'
import type { VerifySummary } from '../../src/cutover/contract-readers.js'

const state: StageState = { stage: 'shadow-read', version: 9, readPercent: 0, changedAt: '2026-03-01T10:00:00.000Z' }
const verify: VerifySummary = { runId: 'v7', startedAt: '2026-03-01T10:05:00.000Z', finishedAt: '2026-03-01T10:06:00.000Z', clean: true, differences: 0, since: null, dimension: 'all' }
const good: GuardInputs = {
  kind: 'advance',
  state,
  target: { stage: 'read-shards', readPercent: 1 },
  stageEnteredAt: '2026-03-01T10:00:00.000Z',
  backfill: { ok: true, value: { state: 'complete', dimensions: { user: { state: 'complete', rowsCopied: 10, updatedAt: null }, merchant: { state: 'complete', rowsCopied: 10, updatedAt: null } }, completedAt: '2026-03-01T09:00:00.000Z' } },
  lastVerify: { ok: true, value: verify },
  journal: { ok: true, value: { total: 0, byPrimary: { legacy: 0 } } },
  instances: { ok: true, value: [{ instanceId: 'a', version: 9, stage: 'shadow-read', host: 'h', pid: 1, expiresInMs: 900 }] },
}
const failing = (i: GuardInputs) => evaluateGuards(i).filter((g) => !g.ok)

describe('evaluateGuards', () => {
  it('passes every guard when backfill, verify, journal and instances are in order', () => {
    const r = evaluateGuards(good)
    expect(r.map((g) => g.guard)).toEqual(['backfill-complete', 'verify-clean', 'journal-empty', 'instances-acknowledged'])
    expect(r.every((g) => g.ok)).toBe(true)
  })

  it('lists every failing guard with a reason that says what to do', () => {
    const bad: GuardInputs = {
      ...good,
      backfill: { ok: true, value: { state: 'running', dimensions: { user: { state: 'complete', rowsCopied: 10, updatedAt: null }, merchant: { state: 'running', rowsCopied: 4, updatedAt: null } }, completedAt: null } },
      lastVerify: { ok: true, value: { ...verify, clean: false, differences: 3 } },
      journal: { ok: true, value: { total: 2, byPrimary: { legacy: 2, 'h/db': 0 } } },
      instances: { ok: true, value: [{ instanceId: 'slow-1', version: 8, stage: 'dual-write', host: null, pid: null, expiresInMs: 10 }] },
    }
    const f = failing(bad)
    expect(f.map((g) => g.guard)).toEqual(['backfill-complete', 'verify-clean', 'journal-empty', 'instances-acknowledged'])
    expect(f[0]!.reason).toContain('merchant running (4 rows copied)')
    expect(f[1]!.reason).toContain('found 3 differing rows; run `shardctl repair`')
    expect(f[2]!.reason).toContain('legacy: 2')
    expect(f[2]!.reason).not.toContain('h/db')
    expect(f[3]!.reason).toContain('slow-1 at 8')
  })

  it('refuses a verify older than the last stage change, partial or missing, and unreadable inputs', () => {
    const old = { ...good, lastVerify: { ok: true as const, value: { ...verify, startedAt: '2026-03-01T09:59:59.999Z' } } }
    expect(failing(old)[0]!.reason).toContain('before the stage changed to shadow-read')
    const partial = { ...good, lastVerify: { ok: true as const, value: { ...verify, dimension: 'user' as const } } }
    expect(failing(partial)[0]!.reason).toContain('only the user dimension')
    expect(failing({ ...good, lastVerify: { ok: true, value: null } })[0]!.reason).toContain('no verify has run')
    const unreadable = failing({ ...good, backfill: { ok: false, error: 'ER_NO_SUCH_TABLE' }, journal: { ok: false, error: 'SHARD_FAILED' } })
    expect(unreadable.map((g) => g.reason)).toEqual([expect.stringContaining('cannot read the backfill status (ER_NO_SUCH_TABLE)'), expect.stringContaining('cannot read the dual-write journal (SHARD_FAILED)')])
  })

  it('needs only acknowledgements to enter dual-write, and full reads to switch writes', () => {
    const toDual: GuardInputs = { ...good, state: { ...state, stage: 'legacy', version: 0 }, target: { stage: 'dual-write', readPercent: 0 }, backfill: { ok: false, error: 'x' }, instances: { ok: true, value: [] } }
    expect(evaluateGuards(toDual)).toEqual([{ guard: 'instances-acknowledged', ok: true }])
    const toWrite: GuardInputs = { ...good, state: { ...state, stage: 'read-shards', readPercent: 60 }, target: { stage: 'write-shards', readPercent: 100 }, instances: { ok: true, value: [] } }
    expect(failing(toWrite).map((g) => g.guard)).toEqual(['reads-at-100'])
  })

  it('lets rollback through except from shards, where legacy is stale', () => {
    expect(evaluateGuards({ ...good, kind: 'rollback', target: { stage: 'dual-write', readPercent: 0 }, backfill: { ok: false, error: 'x' } })).toEqual([])
    const f = failing({ ...good, kind: 'rollback', state: { ...state, stage: 'shards', readPercent: 100 }, target: { stage: 'write-shards', readPercent: 100 } })
    expect(f.map((g) => g.guard)).toEqual(['legacy-current'])
  })
})
