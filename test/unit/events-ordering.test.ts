/**
 * The consumer's pure ordering rules: the decision table, a property that any
 * delivery order with duplicates comes out handled once each in version
 * order, the per-order FIFO lock, the wake-up board, and the epoch tracker
 * (a late reply from before a loss is not another loss).
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import fc from 'fast-check'
import { classifyEvent, KeyedLock, KeyedSignal } from '../../src/events/ordering.js'
import { EpochTracker } from '../../src/events/dedupe.js'

describe('classifyEvent', () => {
  it.each([
    [{ seen: true, lastVersion: 0 }, 1, false, { action: 'duplicate' }],
    [{ seen: true, lastVersion: 5 }, 9, true, { action: 'duplicate' }],
    [{ seen: false, lastVersion: 3 }, 3, false, { action: 'stale', lastVersion: 3 }],
    [{ seen: false, lastVersion: 3 }, 1, true, { action: 'stale', lastVersion: 3 }],
    [{ seen: false, lastVersion: 0 }, 1, false, { action: 'handle' }],
    [{ seen: false, lastVersion: 3 }, 4, false, { action: 'handle' }],
    [{ seen: false, lastVersion: 3 }, 6, false, { action: 'wait', gap: { expected: 4, got: 6 } }],
    [{ seen: false, lastVersion: 3 }, 6, true, { action: 'handle', gap: { expected: 4, got: 6 } }],
    [{ seen: false, lastVersion: 0 }, 2, true, { action: 'handle', gap: { expected: 1, got: 2 } }],
  ] as const)('%o v%d waitOver=%s -> %o', (memory, version, waitOver, want) => {
    expect(classifyEvent(memory, version, waitOver)).toEqual(want)
  })
})

/** A one-order consumer on the rules: `deliveries` are versions (event id = `v<version>`), held ones retried after each handle. */
function simulate(deliveries: readonly number[]): { handled: number[]; gaps: number } {
  let last = 0
  const seen = new Set<number>()
  const handled: number[] = []
  let gaps = 0
  let held: number[] = []
  const tryOne = (v: number, waitOver: boolean): boolean => {
    const d = classifyEvent({ seen: seen.has(v), lastVersion: last }, v, waitOver)
    if (d.action === 'wait') return false
    if (d.action === 'handle') {
      handled.push(v)
      if (d.gap) gaps++
      seen.add(v)
      last = v
    }
    return true
  }
  const drainHeld = () => {
    for (let progress = true; progress; ) {
      progress = false
      const still: number[] = []
      for (const v of held) {
        if (tryOne(v, false)) progress = true
        else still.push(v)
      }
      held = still
    }
  }
  for (const v of deliveries) {
    if (tryOne(v, false)) drainHeld()
    else held.push(v)
  }
  // the wait ends for whatever is still held, in arrival order
  for (const v of held) tryOne(v, true)
  return { handled, gaps }
}

describe('ordering property', () => {
  it('every version delivered at least once, in any order: handled once each, in order, no gap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain((n) =>
          fc.tuple(fc.constant(n), fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i + 1), { minLength: n, maxLength: n }), fc.array(fc.integer({ min: 1, max: n }), { maxLength: 8 })),
        ),
        fc.array(fc.nat(), { maxLength: 8 }),
        ([n, order, dups], positions) => {
          const deliveries = [...order]
          dups.forEach((d, i) => deliveries.splice((positions[i] ?? 0) % (deliveries.length + 1), 0, d))
          const r = simulate(deliveries)
          expect(r.handled).toEqual(Array.from({ length: n }, (_, i) => i + 1))
          expect(r.gaps).toBe(0)
        },
      ),
    )
  })

  it('versions missing for good: what is handled is strictly increasing, each once, and gaps are reported', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 1, maxLength: 30 }), (deliveries) => {
        const r = simulate(deliveries)
        for (let i = 1; i < r.handled.length; i++) expect(r.handled[i]!).toBeGreaterThan(r.handled[i - 1]!)
        const jumps = r.handled.filter((v, i) => v !== (i === 0 ? 1 : r.handled[i - 1]! + 1)).length
        expect(r.gaps).toBe(jumps)
      }),
    )
  })
})

describe('KeyedLock', () => {
  it('hands one key to callers in call order and forgets free keys', async () => {
    const lock = new KeyedLock()
    const order: string[] = []
    const r1 = await lock.acquire('a')
    const p2 = lock.acquire('a').then((r) => (order.push('second'), r))
    const p3 = lock.acquire('a').then((r) => (order.push('third'), r))
    const other = await lock.acquire('b') // another key is not blocked
    other()
    expect(order).toEqual([])
    r1()
    r1() // a second release is harmless
    const r2 = await p2
    expect(order).toEqual(['second'])
    r2()
    ;(await p3)()
    expect(order).toEqual(['second', 'third'])
    expect(lock.size).toBe(0)
  })
})

describe('KeyedSignal', () => {
  afterEach(() => void vi.useRealTimers())

  it('wakes waiters of a key on notify, not those of another key', async () => {
    vi.useFakeTimers()
    const s = new KeyedSignal()
    const a = s.wait('a', 10_000)
    const b = s.wait('b', 10_000)
    s.notify('a')
    await expect(a).resolves.toBe('notified')
    expect(s.size).toBe(1)
    await vi.advanceTimersByTimeAsync(10_000)
    await expect(b).resolves.toBe('timeout')
    expect(s.size).toBe(0)
  })

  it('ends a wait when the signal aborts, and at once when it already did', async () => {
    const s = new KeyedSignal()
    const ac = new AbortController()
    const w = s.wait('a', 60_000, ac.signal)
    ac.abort()
    await expect(w).resolves.toBe('aborted')
    await expect(s.wait('a', 60_000, ac.signal)).resolves.toBe('aborted')
    expect(s.size).toBe(0)
  })
})

describe('EpochTracker', () => {
  const m = (epoch: string, lossAtMs: number) => ({ epoch, lossAtMs })

  it('counts a loss once, however late the replies from before it are noted', () => {
    const t = new EpochTracker(m('a', 0))
    expect(t.note(m('a', 0))).toBe('same')
    expect(t.note(m('b', 1000))).toBe('lost')
    // Replies issued before the flush, noted after: stale, and the current epoch stays b.
    expect(t.note(m('a', 0))).toBe('stale')
    expect(t.note(m('a', 0))).toBe('stale')
    expect(t.current).toEqual(m('b', 1000))
    expect(t.note(m('b', 1000))).toBe('same')
    // A second loss, and late replies of both earlier epochs.
    expect(t.note(m('c', 2000))).toBe('lost')
    expect(t.note(m('b', 1000))).toBe('stale')
    expect(t.note(m('a', 0))).toBe('stale')
    expect(t.current.lossAtMs).toBe(2000)
  })

  it('remembers a bounded number of replaced epochs', () => {
    const t = new EpochTracker(m('e0', 0))
    for (let i = 1; i <= 100; i++) expect(t.note(m(`e${i}`, i))).toBe('lost')
    expect(t.note(m('e99', 99))).toBe('stale')
    expect(t.note(m('e36', 36))).toBe('stale')
    // Older than the last 64 replaced: forgotten (a reply is never that late).
    expect(t.note(m('e35', 35))).toBe('lost')
  })
})
