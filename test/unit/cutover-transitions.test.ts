import { describe, expect, it } from 'vitest'
import { INITIAL_STAGE_STATE, nextState, planTransition, switchesWritePrimary } from '../../src/cutover/transitions.js'
import { STAGES, type Stage, type StageState } from '../../src/cutover/stages.js'
import { describeSteps } from '../../src/cutover/steps.js'
import { inconsistency } from '../../src/cutover/recovery.js'

const at = (stage: Stage, version = 3, readPercent = stage === 'read-shards' ? 10 : stage === 'write-shards' || stage === 'shards' ? 100 : 0): StageState => ({ stage, version, readPercent, changedAt: '2026-01-01T00:00:00.000Z' })

describe('planTransition', () => {
  it('walks every stage forward one at a time and back again', () => {
    let s: StageState = INITIAL_STAGE_STATE
    const seen: string[] = [s.stage]
    for (;;) {
      const p = planTransition(s, 'advance', s.stage === 'read-shards' && s.readPercent < 100 ? 100 : undefined)
      if (!p.ok) break
      s = nextState(s, p.to, new Date(0))
      seen.push(`${s.stage}@${s.readPercent}`)
    }
    expect(seen).toEqual(['legacy', 'dual-write@0', 'shadow-read@0', 'read-shards@1', 'read-shards@100', 'write-shards@100', 'shards@100'])
    expect(s.version).toBe(6)
    const back: string[] = []
    for (;;) {
      const p = planTransition(s, 'rollback')
      if (!p.ok) break
      s = nextState(s, p.to, new Date(0))
      back.push(s.stage)
    }
    expect(back).toEqual(['write-shards', 'read-shards', 'shadow-read', 'dual-write', 'legacy'])
  })

  it('ramps reads at read-shards, one version per step, and refuses the wrong direction', () => {
    const p = planTransition(at('read-shards', 5, 10), 'advance', 50)
    expect(p.ok && p.to).toEqual({ stage: 'read-shards', readPercent: 50 })
    expect(planTransition(at('read-shards', 5, 50), 'advance', 10)).toMatchObject({ ok: false, reason: expect.stringContaining('already at 50%') })
    expect(planTransition(at('read-shards', 5, 50), 'rollback', 20)).toMatchObject({ ok: true, to: { stage: 'read-shards', readPercent: 20 } })
    expect(planTransition(at('read-shards', 5, 50), 'rollback', 70)).toMatchObject({ ok: false })
    expect(planTransition(at('read-shards', 5, 50), 'advance')).toMatchObject({ ok: false, reason: expect.stringContaining('--percent 100') })
    expect(planTransition(at('shadow-read'), 'advance', 25)).toMatchObject({ ok: true, to: { stage: 'read-shards', readPercent: 25 } })
  })

  it('refuses --percent away from read-shards, out-of-range percentages, and moves past the ends', () => {
    expect(planTransition(at('legacy'), 'advance', 10)).toMatchObject({ ok: false, reason: expect.stringContaining('only at read-shards') })
    expect(planTransition(at('shadow-read'), 'advance', 0)).toMatchObject({ ok: false, reason: expect.stringContaining('1 to 100') })
    expect(planTransition(at('shadow-read'), 'advance', 101)).toMatchObject({ ok: false })
    expect(planTransition(at('shards'), 'advance')).toMatchObject({ ok: false, reason: expect.stringContaining('last stage') })
    expect(planTransition(at('legacy'), 'rollback')).toMatchObject({ ok: false, reason: expect.stringContaining('first stage') })
  })

  it('marks the write-primary switch and the point of no return', () => {
    expect(switchesWritePrimary('read-shards', 'write-shards')).toBe(true)
    expect(switchesWritePrimary('write-shards', 'read-shards')).toBe(true)
    expect(STAGES.filter((s, i) => i > 0 && switchesWritePrimary(STAGES[i - 1]!, s))).toEqual(['write-shards'])
    const p = planTransition(at('read-shards', 5, 100), 'advance')
    expect(p.ok && p.writePrimarySwitch).toBe(true)
    const last = planTransition(at('write-shards'), 'advance')
    expect(last.ok && last.pointOfNoReturn).toContain('legacy receives no writes')
    const back = planTransition(at('shards'), 'rollback')
    expect(back.ok && back.pointOfNoReturn).toBeNull()
  })
})

describe('describeSteps (the dry-run twin)', () => {
  it('lists the steps in order, with the journal drain only for the write-primary switch', () => {
    const o = { primaries: ['legacy', 'h0/db0'], ackTimeoutMs: 2000, drainTimeoutMs: 5000, fenceBudgetMs: 1000 }
    const sw = describeSteps(at('read-shards', 7, 100), { stage: 'write-shards', readPercent: 100 }, { ...o, writePrimarySwitch: true })
    expect(sw.map((s) => s.step)).toEqual(['lock', 'guards', 'raise-fences', 'publish', 'await-acks', 'drain-journal', 'record', 'open-fences', 'unlock'])
    expect(sw.find((s) => s.step === 'publish')!.description).toContain('version 8')
    expect(sw.find((s) => s.step === 'await-acks')!.description).toContain('restore read-shards as version 9')
    expect(sw.every((s) => s.status === 'planned')).toBe(true)
    const ramp = describeSteps(at('read-shards', 7, 10), { stage: 'read-shards', readPercent: 50 }, { ...o, writePrimarySwitch: false })
    expect(ramp.map((s) => s.step)).not.toContain('drain-journal')
    expect(ramp.find((s) => s.step === 'publish')!.description).toContain('50% reads')
  })
})

describe('inconsistency (recovery check)', () => {
  const f = (version: number | null, state: 'open' | 'raised' | 'missing' = 'open') => ({ primary: 'legacy', database: 'd', version, state }) as const
  it('accepts a fresh fleet and an agreeing one', () => {
    expect(inconsistency(undefined, undefined, [f(null, 'missing')])).toBeUndefined()
    expect(inconsistency(at('dual-write', 4), at('dual-write', 4), [f(4), { ...f(4), primary: 'h/db' }])).toBeUndefined()
  })
  it('names what disagrees', () => {
    expect(inconsistency(at('write-shards', 5), at('read-shards', 4, 100), [f(4)])).toContain('interrupted')
    expect(inconsistency(at('dual-write', 4), at('dual-write', 4), [f(3)])).toContain('fences not open at v4: legacy open v3')
    expect(inconsistency(at('dual-write', 4), at('dual-write', 4), [f(4, 'raised')])).toContain('raised')
    expect(inconsistency(undefined, at('dual-write', 4), [f(4)])).toContain('Redis holds no stage')
    expect(inconsistency(undefined, undefined, [f(2)])).toContain('no stage was ever set')
  })
})
