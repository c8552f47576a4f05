/**
 * The operator surface's pure parts: rate and ETA from recent samples
 * (progress never above 100 %), shard states, value parsing for job control,
 * `--interval` and `--listen`, and the loopback rule of `serve`.
 */
import { describe, expect, it } from 'vitest'
import { etaSeconds, heldRate, progressShare, projectedRate, recentRate, trimSamples, type RateSample } from '../../src/jobs/rate.js'
import { backfillSection } from '../../src/status/sections.js'
import type { JobProgressRow } from '../../src/status/sources.js'
import { parseSettingValue } from '../../src/jobs/settings.js'
import { countStates, shardViews, type DimensionFacts } from '../../src/status/shards.js'
import { parseInterval } from '../../src/cli/commands/status.js'
import { isLoopback, parseListen } from '../../src/serve/server.js'
import type { ShardPlacement } from '../../src/config/schema.js'

const shards: ShardPlacement[] = Array.from({ length: 120 }, (_, i) => ({ dimension: 'user', shard: i, host: i < 60 ? 'h1' : 'h2', database: 'db', table: `t${i}` }))
const facts = (over: Partial<DimensionFacts>): DimensionFacts => ({ dimension: 'user', shards, backfill: { state: 'complete', completedAt: '2026-01-01T00:00:00.000Z' }, job: null, verify: null, hostErrors: new Map(), ...over })

describe('rate and ETA', () => {
  it('takes the rate over the last minute only, not the whole run', () => {
    // 10 minutes at 100 rows/s, then one minute at 1000 rows/s.
    const s: RateSample[] = []
    for (let t = 0; t <= 600; t += 10) s.push([t * 1000, t * 100])
    for (let t = 610; t <= 660; t += 10) s.push([t * 1000, 60_000 + (t - 600) * 1000])
    // The last minute (600..660 s) ran at 1000 rows/s; the whole-run average would say 182.
    expect(recentRate(trimSamples(s))).toBeCloseTo(1000, 6)
    expect(recentRate(s)).toBeCloseTo(1000, 6)
    expect(trimSamples(s)[0]![0]).toBe(600_000)
    // Half a minute of each pace: the window mixes them.
    expect(recentRate(s.slice(0, 64))).toBeCloseTo((30 * 100 + 30 * 1000) / 60, 6)
    expect(recentRate([[0, 0]])).toBeNull()
    expect(recentRate([[0, 0], [100, 50]])).toBeNull()
  })

  // A throttled copy at 600 rows/s, reporting each second, with a 4 s stall 4 s after the
  // throttle changed (the window restarts then): no report during the stall, then the throttle's
  // one second of catch-up, then the limit again. The shape CI saw: "ETA 25 s, real 16.6 s".
  const stalled = (limit: number): RateSample[] => {
    const s: RateSample[] = [[0, 5_000]]
    const step = (at: number, rows: number) => s.push([at * 1000, s[s.length - 1]![1] + rows])
    for (let t = 1; t <= 4; t++) step(t, limit)
    step(8, limit)
    for (let t = 9; t <= 11; t++) step(t, limit)
    return s
  }

  it('projects a throttled job at the pace it holds, not at an average a stall pulled down', () => {
    const s = stalled(600)
    expect(recentRate(s)).toBeCloseTo(4_800 / 11, 6)
    expect(heldRate(s)).toBeCloseTo(600, 6)
    expect(projectedRate(s, 600)).toBeCloseTo(600, 6)
    // Unthrottled, the machine sets the pace, stalls included: the average.
    expect(projectedRate(s, null)).toBeCloseTo(4_800 / 11, 6)
    // Never above the limit (the catch-up interval runs faster than it).
    expect(projectedRate([[0, 0], [1000, 600], [2000, 1_500], [3000, 2_100]], 600)).toBe(600)
    // A job that cannot reach its limit is projected at what it holds.
    expect(projectedRate([[0, 0], [1000, 300], [2000, 600], [3000, 900]], 600)).toBeCloseTo(300, 6)
    // A stall for most of the window is the pace: 1 s at 600, then 6 s with 100 rows.
    expect(projectedRate([[0, 0], [1000, 600], [7000, 700]], 600)).toBeCloseTo(100 / 6, 6)
    expect(heldRate([[0, 0]])).toBeNull()
    expect(heldRate([[0, 0], [200, 10], [400, 20]])).toBeNull()
  })

  it('gives a throttled backfill at 50 % the ETA of its limit despite a stall in the window', () => {
    const samples = stalled(600)
    const done = samples[samples.length - 1]![1]
    const cp = (dimension: string) => ({ dimension, state: 'running' as const, lastPk: '1', rowsCopied: done, startedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:11.000Z', completedAt: null })
    const p: JobProgressRow = {
      job: 'backfill', runId: 'r1', scope: 'all', state: 'running', host: 'h', pid: 1, startedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:11.000Z',
      reportAgeMs: 100, finishedAt: null, rowsDone: done, rowsTotal: 2 * done, chunks: 40, chunkSize: 250, concurrency: 1, maxRowsPerSecond: 600, samples, message: null,
    }
    const b = backfillSection({ ok: true, value: new Map([['user', cp('user')], ['merchant', cp('merchant')]]) }, null, p, null, 30_000, null)
    expect(b.state).toBe('running')
    expect(b.percent).toBe(50)
    // The measured rate is still shown as measured; the ETA projects the limit the job holds.
    expect(b.rowsPerSecond).toBe(Math.round(4_800 / 11))
    expect(b.etaSeconds).toBe(Math.round(done / 600))
    // Unthrottled, the same samples project at the average.
    const u = backfillSection({ ok: true, value: new Map([['user', cp('user')], ['merchant', cp('merchant')]]) }, null, { ...p, maxRowsPerSecond: null }, null, 30_000, null)
    expect(u.etaSeconds).toBe(Math.round(done / (4_800 / 11)))
  })

  it('never reports progress above 100 % nor a negative ETA', () => {
    expect(progressShare(1200, 1000)).toBe(1)
    expect(progressShare(500, 1000)).toBe(0.5)
    expect(progressShare(5, null)).toBeNull()
    expect(etaSeconds(1200, 1000, 10)).toBe(0)
    expect(etaSeconds(500, 1000, 100)).toBe(5)
    expect(etaSeconds(500, 1000, 0)).toBeNull()
    expect(etaSeconds(500, null, 10)).toBeNull()
  })
})

describe('shard states', () => {
  it('copied until a clean verify started after the copy completed, then verified', () => {
    expect(countStates(shardViews(facts({}))).copied).toBe(120)
    const before = shardViews(facts({ verify: { startedAt: '2025-12-31T00:00:00.000Z', clean: true, differences: 0, byShard: {}, runId: 'v0' } }))
    expect(countStates(before).copied).toBe(120)
    const after = shardViews(facts({ verify: { startedAt: '2026-01-02T00:00:00.000Z', clean: true, differences: 0, byShard: {}, runId: 'v1' } }))
    expect(countStates(after).verified).toBe(120)
  })

  it('a difference marks its shard, a dead host its shards, job control the rest', () => {
    const v = shardViews(facts({ verify: { startedAt: '2026-01-02T00:00:00.000Z', clean: false, differences: 2, byShard: { '7': 2 }, runId: 'v2' }, hostErrors: new Map([['h2', 'ECONNREFUSED']]) }))
    expect(v[7]).toMatchObject({ state: 'mismatch', differences: 2 })
    expect(countStates(v)).toMatchObject({ mismatch: 1, verified: 59, error: 60 })
    expect(v[100]!.reason).toContain('h2 does not answer (ECONNREFUSED)')
    const running = facts({ backfill: { state: 'running', completedAt: null } })
    expect(countStates(shardViews({ ...running, job: { state: 'paused', message: null, percent: 40 } })).paused).toBe(120)
    expect(countStates(shardViews({ ...running, job: { state: 'running', message: null, percent: 40 } })).copying).toBe(120)
    expect(countStates(shardViews({ ...running, job: { state: 'failed', message: 'DB_ERROR', percent: 40 } })).error).toBe(120)
    expect(countStates(shardViews({ ...running, job: { state: 'stopped', message: null, percent: 40 } })).pending).toBe(120)
    expect(countStates(shardViews(facts({ backfill: { state: 'not-started', completedAt: null } }))).pending).toBe(120)
    const unknown = shardViews(facts({ verify: { startedAt: '2026-01-02T00:00:00.000Z', clean: false, differences: 3, byShard: null, runId: 'old' } }))
    expect(unknown[0]!.differences).toBeNull()
    expect(unknown[0]!.why.differences).toContain('did not record them per shard')
  })
})

describe('parsing', () => {
  it('job settings: numbers in range, off/auto/default clear, anything else names the flag', () => {
    expect(parseSettingValue('backfill', 'maxRowsPerSecond', '2500')).toBe(2500)
    expect(parseSettingValue('backfill', 'maxRowsPerSecond', 'off')).toBeNull()
    expect(parseSettingValue('backfill', 'chunkSize', 'auto')).toBeNull()
    expect(() => parseSettingValue('verify', 'chunkSize', 'auto')).toThrow(/--chunk-size/)
    expect(() => parseSettingValue('backfill', 'concurrency', '65')).toThrow(/--concurrency must be a whole number from 1 to 64/)
    expect(() => parseSettingValue('backfill', 'maxRowsPerSecond', '')).toThrow(/got an empty value/)
    expect(() => parseSettingValue('backfill', 'maxRowsPerSecond', '1.5')).toThrow(/--max-rows-per-second/)
  })

  it('--interval and --listen', () => {
    expect(parseInterval('2s')).toBe(2000)
    expect(parseInterval('500ms')).toBe(500)
    expect(parseInterval('1m')).toBe(60_000)
    expect(parseInterval('3')).toBe(3000)
    expect(() => parseInterval('10ms')).toThrow(/--interval/)
    expect(() => parseInterval('soon')).toThrow(/--interval/)
    expect(parseListen('127.0.0.1:9400')).toEqual({ host: '127.0.0.1', port: 9400 })
    expect(parseListen(':0')).toEqual({ host: '127.0.0.1', port: 0 })
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 })
    expect(() => parseListen('9400')).toThrow(/--listen/)
    expect(() => parseListen('h:70000')).toThrow(/--listen/)
    expect(isLoopback('127.0.0.1')).toBe(true)
    expect(isLoopback('127.8.9.1')).toBe(true)
    expect(isLoopback('::1')).toBe(true)
    expect(isLoopback('localhost')).toBe(true)
    expect(isLoopback('0.0.0.0')).toBe(false)
    expect(isLoopback('10.0.0.1')).toBe(false)
  })
})

describe('metrics read at scrape time', () => {
  it('mirrors a consumer\'s running totals as counters that only go up, and starts a series over when a total drops', async () => {
    const { ShardkitMetrics } = await import('../../src/metrics/metrics.js')
    const m = new ShardkitMetrics()
    const counters = { handled: 3, duplicates: 1, stale: 0, gaps: 0, waited: 0, failures: 0, malformed: 0 }
    m.bindConsumer({ queue: 'billing.order-events.00', counters })
    const value = async (outcome: string) => {
      const line = (await m.registry.metrics()).split('\n').find((l) => l.startsWith(`shardkit_consumer_events_total{queue="billing.order-events.00",outcome="${outcome}"}`))
      return line === undefined ? undefined : Number(line.split(' ').pop())
    }
    expect(await value('handled')).toBe(3)
    counters.handled = 10
    expect(await value('handled')).toBe(10)
    expect(await value('duplicates')).toBe(1)
    // A restarted consumer counts from 0 again: the series restarts instead of going down.
    counters.handled = 2
    expect(await value('handled')).toBe(2)
    counters.handled = 5
    expect(await value('handled')).toBe(5)
    // After a Redis loss: what could not be vouched for, the losses noticed, the orders restored.
    expect(await value('unvouched')).toBe(0)
    Object.assign(counters, { unvouched: 4, redisLosses: 1, restored: 7 })
    expect(await value('unvouched')).toBe(4)
    const text = await m.registry.metrics()
    expect(text).toContain('shardkit_consumer_redis_losses_total{queue="billing.order-events.00"} 1')
    expect(text).toContain('shardkit_consumer_restored_total{queue="billing.order-events.00"} 7')
  })

  it('mirrors the relay\'s retried events and shows what it still holds for a refusing target', async () => {
    const { ShardkitMetrics } = await import('../../src/metrics/metrics.js')
    const m = new ShardkitMetrics()
    const s = { outbox: 'legacy', holding: true, token: 3, published: 12, unroutable: 0, failed: 2, nacked: 2, owed: 7, retried: 0, lastError: 'NACK', waitingOn: null, skipping: [], lastPublishAt: null }
    m.bindRelay({ stats: () => [{ ...s }] })
    let text = await m.registry.metrics()
    expect(text).toContain('shardkit_relay_held{outbox="legacy"} 7')
    expect(text).toContain('shardkit_relay_retried_total{outbox="legacy"} 0')
    Object.assign(s, { owed: 0, retried: 7 })
    text = await m.registry.metrics()
    expect(text).toContain('shardkit_relay_held{outbox="legacy"} 0')
    expect(text).toContain('shardkit_relay_retried_total{outbox="legacy"} 7')
  })

  it('a stage applied and a heartbeat written show as the stage gauges and the heartbeat age', async () => {
    const { ShardkitMetrics } = await import('../../src/metrics/metrics.js')
    const m = new ShardkitMetrics()
    m.stageApplied({ stage: 'read-shards', version: 7, readPercent: 50, changedAt: '' })
    m.heartbeatWritten()
    const text = await m.registry.metrics()
    expect(text).toContain('shardkit_stage_version 7')
    expect(text).toContain('shardkit_stage_info{stage="read-shards"} 1')
    const age = Number(/^shardkit_heartbeat_age_seconds (\S+)$/m.exec(text)![1])
    expect(age).toBeGreaterThanOrEqual(0)
    expect(age).toBeLessThan(1)
  })
})
