/**
 * The wait-out of an uncertain high-water (issue 17 point 3), on an injected
 * clock: a grant flagged `highWaterUncertain` issues nothing for one lease TTL
 * plus maxLeadMs of monotonic time, whatever the wall clock does, keeps its
 * lease alive by renewing meanwhile, and then issues at its own clock.
 */
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/idgen/clock.js'
import { openIdGenerator } from '../../src/idgen/generator.js'
import { decodeId } from '../../src/idgen/layout.js'
import type { LeaseGrant, LeaseRequest } from '../../src/idgen/lease.js'
import { isShardkitError } from '../../src/errors.js'
import { MemoryLeaseStore } from '../support/idgen-memory-store.js'

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0)

/** The memory store, with grants that say the mirror had no record. */
class UncertainStore extends MemoryLeaseStore {
  override async acquire(req: LeaseRequest): Promise<LeaseGrant> {
    return { ...(await super.acquire(req)), highWaterUncertain: true }
  }
}

describe('a generator whose high-water is uncertain', () => {
  it('refuses (retryable ID_CLOCK_BEHIND) for TTL + maxLeadMs of monotonic time, then issues at its clock', async () => {
    const clock = new ManualClock(T0, 1_000)
    const store = new UncertainStore(() => clock.monoMs())
    const gen = await openIdGenerator({ store, clock, autoRenew: false, leaseTtlMs: 3_000, maxLeadMs: 500 })
    expect(gen.status().holdMs).toBe(3_500)
    let err: unknown
    try {
      gen.nextId(1)
    } catch (e) {
      err = e
    }
    expect(isShardkitError(err, 'ID_CLOCK_BEHIND') && err.retryable, String(err)).toBe(true)
    expect(gen.tryNextId(1)).toBeUndefined()
    // A wall clock set forward does not shorten the wait; only time passing does.
    clock.stepWall(60_000)
    expect(gen.tryNextId(1)).toBeUndefined()
    clock.stepWall(-60_000)
    for (let i = 0; i < 3; i++) {
      clock.advance(1_000)
      await gen.renew()
      expect(gen.tryNextId(1)).toBeUndefined()
    }
    clock.advance(499)
    expect(gen.tryNextId(1)).toBeUndefined()
    expect(gen.status().holdMs).toBe(1)
    clock.advance(1)
    await gen.renew()
    const id = gen.nextId(1)
    expect(decodeId(id).timestampMs).toBe(clock.wallMs())
    expect(gen.status().holdMs).toBe(0)
    await gen.close()
  })

  it('a certain grant (the default) does not wait', async () => {
    const clock = new ManualClock(T0, 1_000)
    const gen = await openIdGenerator({ store: new MemoryLeaseStore(() => clock.monoMs()), clock, autoRenew: false })
    expect(gen.status().holdMs).toBe(0)
    expect(decodeId(gen.nextId(1)).timestampMs).toBe(T0)
    await gen.close()
  })
})
