/**
 * "Never block the event loop more than 1 ms": the generator, asked for far
 * more than 128 ids per ms, refuses at once (tryNextId returns undefined;
 * nextId throws ID_CLOCK_BEHIND) instead of spinning until the next millisecond. Measured with
 * perf_hooks.monitorEventLoopDelay beside a spin-waiting reference generator,
 * which shows the instrument does catch a blocked loop.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { ManualClock, systemClock, type Clock } from '../../src/idgen/clock.js'
import { openIdGenerator } from '../../src/idgen/generator.js'
import { ID_EPOCH_MS, compareIds, encodeIdUnchecked } from '../../src/idgen/layout.js'
import { MemoryLeaseStore } from '../support/idgen-memory-store.js'

const RESOLUTION_MS = 1
const RUN_MS = 400
const ASK_PER_TICK = 1_000 // ~8x what one ms can give: the sequence is always used up

interface LoopReport {
  ids: number
  /** Histogram values minus the sampling interval: how late the loop was. */
  p99ExcessMs: number
  maxExcessMs: number
  /** The longest single id call, measured around the call (includes GC and preemption on a shared machine). */
  maxCallMs: number
  calls: number
  /** Calls that took over 1 ms. */
  slowCalls: number
}

/** Runs `take` once per loop turn for RUN_MS while the loop delay is sampled every 1 ms. */
async function measure(take: () => number, onTurn: () => void = () => {}): Promise<LoopReport> {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  let ids = 0
  let maxCallMs = 0
  let calls = 0
  let slowCalls = 0
  h.enable()
  const end = performance.now() + RUN_MS
  await new Promise<void>((resolve, reject) => {
    const turn = (): void => {
      try {
        for (let i = 0; i < ASK_PER_TICK; i++) {
          const t0 = performance.now()
          const n = take()
          const took = performance.now() - t0
          calls++
          if (took > 1) slowCalls++
          maxCallMs = Math.max(maxCallMs, took)
          if (n === 0) break
          ids += n
        }
        onTurn()
      } catch (err) {
        reject(err)
        return
      }
      if (performance.now() < end) setImmediate(turn)
      else resolve()
    }
    setImmediate(turn)
  })
  h.disable()
  const ns = 1e6
  return { ids, p99ExcessMs: h.percentile(99) / ns - RESOLUTION_MS, maxExcessMs: h.max / ns - RESOLUTION_MS, maxCallMs, calls, slowCalls }
}

async function ourTake(clock: Clock): Promise<{ take: () => number; prev: () => string; close: () => Promise<void> }> {
  const gen = await openIdGenerator({ store: new MemoryLeaseStore(() => clock.monoMs()), clock, autoRenew: false, leaseTtlMs: 600_000, maxLeadMs: 5 })
  let prev = '0'
  return {
    take: () => {
      const id = gen.tryNextId(12345)
      if (id === undefined) return 0
      if (compareIds(prev, id) >= 0) throw new Error(`not increasing: ${prev} then ${id}`)
      prev = id
      return 1
    },
    prev: () => prev,
    close: () => gen.close(),
  }
}

/** The naive fix for sequence exhaustion: spin until the next millisecond (what we must not do). */
function spinningTake(): () => number {
  let last = -1
  let seq = 0
  return () => {
    let now = Date.now()
    if (now === last) {
      if (++seq > 127) {
        while ((now = Date.now()) <= last) {
          /* spin */
        }
        seq = 0
      }
    } else seq = 0
    last = now
    encodeIdUnchecked(now - ID_EPOCH_MS, 0, seq, 105)
    return 1
  }
}

describe('event-loop delay while the sequence is used up', () => {
  it('our generator on the real clock: p99 delay under 1 ms over an idle loop (best of 3-5 rounds); the spinning reference is caught blocking', async () => {
    // Other processes share these 2 cores and delay any loop, busy or idle. Each round measures
    // ours and then an idle loop, and judges ours by its p99 above the idle one's: what the
    // generator adds. A generator that waited for the clock would add it in every round, as the
    // reference does.
    const rounds: { ours: LoopReport; idle: LoopReport; added: number }[] = []
    for (let i = 0; i < 5; i++) {
      const g = await ourTake(systemClock)
      const ours = await measure(g.take)
      await g.close()
      const idle = await measure(() => 0)
      rounds.push({ ours, idle, added: ours.p99ExcessMs - idle.p99ExcessMs })
      if (i >= 2 && Math.min(...rounds.map((r) => r.added)) < 1) break
    }
    const spin = await measure(spinningTake())
    const idle = await measure(() => 0)
    console.log(`event loop, ${RUN_MS} ms asking ${ASK_PER_TICK} ids per turn: ours ${JSON.stringify(rounds)}; spin-wait reference ${JSON.stringify(spin)}; idle loop ${JSON.stringify(idle)}`)
    expect(Math.min(...rounds.map((r) => r.added))).toBeLessThan(1)
    for (const { ours: r } of rounds) {
      // Ours ran at the sequence's limit (128/ms, plus the 5 ms lead) without blocking.
      expect(r.ids).toBeGreaterThan(128 * RUN_MS * 0.5)
      // A single call can be preempted on a shared machine; a waiting generator would be slow every ms.
      expect(r.slowCalls).toBeLessThanOrEqual(Math.ceil(r.calls / 1000))
    }
    expect(spin.p99ExcessMs - idle.p99ExcessMs).toBeGreaterThan(2)
  })

  it('our generator on an injected frozen clock, moved 1 ms per loop turn: no call waits for the clock', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1))
    const ours = await ourTake(clock)
    const r = await measure(ours.take, () => clock.advance(1))
    await ours.close()
    // Every call returned although the clock never moved inside a turn: a generator that
    // waited for the next millisecond would hang here, not just run slowly.
    expect(r.ids).toBeGreaterThan(128 * 100)
    expect(r.slowCalls).toBeLessThanOrEqual(Math.ceil(r.calls / 1000))
  })
})
