import { describe, expect, it } from 'vitest'
import { LatencyRecorder } from '../../examples/load/stats.js'
import { DEFAULT_MIX, nextStatusFor, OrderPool, pickKey, pickOperation, type KnownOrder } from '../../examples/load/mix.js'
import { formatLoadReport } from '../../examples/load/generator.js'

function seq(values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length]!
}

describe('latency recorder', () => {
  it('reports nearest-rank percentiles over 10,000 samples and grows past its first buffer', () => {
    const r = new LatencyRecorder()
    for (let i = 10_000; i >= 1; i--) r.add(i)
    const s = r.summary()
    expect(s).toMatchObject({ count: 10_000, p50: 5000, p90: 9000, p99: 9900, max: 10_000, mean: 5000.5 })
  })
  it('is all zeros when empty', () => {
    expect(new LatencyRecorder().summary()).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 })
  })
})

describe('operation mix', () => {
  it('creates first when nothing is known yet, and follows the weights after', () => {
    expect(pickOperation(DEFAULT_MIX, () => 0.5, 0)).toBe('create')
    expect(pickOperation(DEFAULT_MIX, () => 0.5, 10)).toBe('get')
    expect(pickOperation(DEFAULT_MIX, () => 0.1, 10)).toBe('create')
    expect(pickOperation(DEFAULT_MIX, () => 0.95, 10)).toBe('status')
    const counts: Record<string, number> = {}
    let x = 0
    for (let i = 0; i < 1000; i++) {
      const op = pickOperation(DEFAULT_MIX, () => (x = (x + 0.618033) % 1), 10)
      counts[op] = (counts[op] ?? 0) + 1
    }
    expect(counts.create).toBeGreaterThan(350)
    expect(counts.create).toBeLessThan(450)
  })

  it('takes a movable order out of the pool so two moves never race, and skips final ones', () => {
    const pool = new OrderPool(3)
    const o = (id: string, status: KnownOrder['status']): KnownOrder => ({ id, userId: '1', merchantId: '2', status, version: 1 })
    pool.add(o('1', 'completed'))
    pool.add(o('2', 'created'))
    const taken = pool.takeMovable(seq([0, 0.9]))
    expect(taken?.id).toBe('2')
    expect(pool.size).toBe(1)
    expect(pool.takeMovable(seq([0]))).toBeUndefined()
    pool.add(o('3', 'paid'))
    pool.add(o('4', 'paid'))
    pool.add(o('5', 'paid'))
    expect(pool.size).toBe(3)
    expect(nextStatusFor(o('9', 'paid'), () => 0.05)).toBe('cancelled')
    expect(nextStatusFor(o('9', 'paid'), () => 0.5)).toBe('accepted')
    expect(nextStatusFor(o('9', 'delivering'), () => 0.05)).toBe('completed')
    expect(pickKey(() => 0, 10)).toBe('1')
    expect(pickKey(() => 0.999, 10)).toBe('10')
  })
})

describe('load report text', () => {
  it('shows totals, percentiles and failure samples', () => {
    const lat = { count: 2, p50: 1, p90: 2, p99: 3, max: 4, mean: 2 }
    const none = { requests: 0, errors: 0, latency: { ...lat, count: 0 } }
    const text = formatLoadReport({ seconds: 2, targetRps: 10, requests: 20, errors: 1, skipped: 0, created: 8, latency: lat, failures: [{ op: 'get', status: 404, error: 'nope' }], byOp: { create: { requests: 9, errors: 0, latency: lat }, get: { requests: 11, errors: 1, latency: lat }, 'list-user': none, 'list-merchant': none, status: none } })
    expect(text).toContain('20 requests in 2s (target 10/s), 1 errors')
    expect(text).toContain('p99 3')
    expect(text).toContain('failed get: 404 nope')
    expect(text).not.toContain('list-user')
  })
})
