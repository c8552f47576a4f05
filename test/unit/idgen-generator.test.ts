/**
 * The generator on an injected clock and an in-memory lease store: pure, no
 * I/O, no sleeps. The same contract against MySQL is in
 * test/integration/idgen-lease.test.ts and idgen-processes.test.ts.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ManualClock } from '../../src/idgen/clock.js'
import { openIdGenerator, type IdGenerator, type IdGeneratorOptions } from '../../src/idgen/generator.js'
import { ID_EPOCH_MS, ID_TIME_LIMIT_MS, MAX_TIME, compareIds, decodeId, encodeIdUnchecked, shardFieldUnchecked, shardOfId } from '../../src/idgen/layout.js'
import { isShardkitError, type ShardkitErrorCode } from '../../src/errors.js'
import { MemoryLeaseStore } from '../support/idgen-memory-store.js'

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0)

function setup(o: Partial<IdGeneratorOptions> & { wall?: number } = {}) {
  const clock = new ManualClock(o.wall ?? T0, 1_000)
  const store = new MemoryLeaseStore(() => clock.monoMs())
  return { clock, store, open: (more: Partial<IdGeneratorOptions> = {}) => openIdGenerator({ store, clock, autoRenew: false, ...o, ...more }) }
}

function codeOf(fn: () => unknown): ShardkitErrorCode | 'none' {
  try {
    fn()
    return 'none'
  } catch (err) {
    if (isShardkitError(err)) return err.code
    throw err
  }
}

async function rejectsWith(p: Promise<unknown>, code: ShardkitErrorCode): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isShardkitError(err, code), `expected ${code}, got ${String(err)}`).toBe(true)
  return err as Error
}

/** A small deterministic PRNG, so a failing trace can be replayed. */
function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % n
  }
}

describe('1,000,000 ids from one generator', () => {
  it('are unique and strictly increasing across ms boundaries and sequence exhaustion', async () => {
    const { clock, open } = setup({ leaseTtlMs: 3_600_000 })
    const gen = await open()
    const rnd = lcg(42)
    const seen = new Set<string>()
    let prev = '0'
    let borrowed = 0
    let behind = 0
    let shardErrors = 0
    const N = 1_000_000
    while (seen.size < N) {
      // Bursts of up to 400 in one ms use up the 128-id sequence and borrow the next ms.
      const burst = 1 + rnd(400)
      for (let b = 0; b < burst && seen.size < N; b++) {
        const user = rnd(1_000_000)
        let id: string
        try {
          id = gen.nextId(user)
        } catch (err) {
          if (!isShardkitError(err, 'ID_CLOCK_BEHIND')) throw err
          behind++
          clock.advance(1)
          continue
        }
        if (compareIds(prev, id) >= 0) throw new Error(`not increasing: ${prev} then ${id}`)
        if (shardFieldUnchecked(id) !== user % 120) shardErrors++
        seen.add(id)
        prev = id
      }
      if (gen.status().leadMs > 0) borrowed++
      clock.advance(rnd(3))
    }
    expect(seen.size).toBe(N)
    expect(shardErrors).toBe(0)
    expect(borrowed).toBeGreaterThan(100)
    expect(behind).toBeGreaterThan(0)
    const span = decodeId(prev).time - decodeId([...seen][0]!).time
    expect(span).toBeGreaterThanOrEqual(Math.ceil(N / 128) - 1)
    await gen.close()
  }, 120_000)
})

describe('routing: shardOfId(nextId(user)) is the user shard', () => {
  it('for users 0, 1, 119, 120, 2^53-1, 2^63-1 and 100,000 random ones', async () => {
    const { clock, open } = setup({ leaseTtlMs: 3_600_000, maxLeadMs: 60_000 })
    const gen = await open()
    const fixed: (number | string)[] = [0, 1, 119, 120, Number.MAX_SAFE_INTEGER, '9007199254740993', '9223372036854775807']
    for (const u of fixed) expect(shardOfId(gen.nextId(u))).toBe(Number(BigInt(u) % 120n))
    expect(shardOfId(gen.nextId(Number.MAX_SAFE_INTEGER))).toBe(31)
    let n = 0
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n })), (u) => {
        if (++n % 100 === 0) clock.advance(1)
        const id = gen.nextId(typeof u === 'bigint' ? u.toString() : u)
        return shardOfId(id) === Number(BigInt(u) % 120n)
      }),
      { numRuns: 100_000 },
    )
    await gen.close()
  })
  it('refuses a user id that is not a non-negative integer, naming it', async () => {
    const { open } = setup()
    const gen = await open()
    // Every user id the router routes is accepted (up to DECIMAL(20,0), issue 16); wider ones are not.
    for (const ok of ['9223372036854775808', '18446744073709551615', '99999999999999999999']) expect(shardOfId(gen.nextId(ok))).toBe(Number(BigInt(ok) % 120n))
    for (const bad of [-1, 1.5, Number.NaN, 'abc', '007', '', '-5', '100000000000000000000']) {
      expect(() => gen.nextId(bad as never)).toThrow(/userId/)
    }
    await gen.close()
  })
})

describe('clock behaviour', () => {
  it.each([1, 10, 500, 990])('a step back of %i ms keeps issuing on its own timeline, above every earlier id', async (back) => {
    const { clock, open } = setup()
    const gen = await open()
    const before = gen.nextIds(7, 50)
    clock.stepWall(-back)
    const after = gen.nextIds(7, 200)
    expect(compareIds(before.at(-1)!, after[0]!)).toBe(-1)
    for (let i = 1; i < after.length; i++) expect(compareIds(after[i - 1]!, after[i]!)).toBe(-1)
    expect(decodeId(after[0]!).timestampMs).toBe(T0)
    await gen.close()
  })

  it.each([1_001, 10_000])('a step back of %i ms (beyond maxLeadMs 1000) fails typed and retryable, then resumes above the old ids', async (back) => {
    const { clock, open } = setup()
    const gen = await open()
    const before = gen.nextIds(7, 10)
    clock.stepWall(-back)
    let err: unknown
    try {
      gen.nextId(7)
    } catch (e) {
      err = e
    }
    expect(isShardkitError(err, 'ID_CLOCK_BEHIND')).toBe(true)
    expect((err as { retryable: boolean }).retryable).toBe(true)
    expect((err as Error).message).toMatch(/maxLeadMs 1000/)
    clock.advance(back - 1_000)
    const after = gen.nextId(7)
    expect(compareIds(before.at(-1)!, after)).toBe(-1)
    await gen.close()
  })

  it('a frozen clock yields exactly 128 x (1 + maxLeadMs) ids, then ID_CLOCK_BEHIND; 128 more per ms after', async () => {
    const { clock, open } = setup({ maxLeadMs: 50 })
    const gen = await open()
    let n = 0
    while (codeOf(() => gen.nextId(1)) === 'none') n++
    expect(n).toBe(128 * 51)
    expect(gen.status().leadMs).toBe(50)
    clock.advance(1)
    let more = 0
    while (codeOf(() => gen.nextId(1)) === 'none') more++
    expect(more).toBe(128)
    await gen.close()
  })

  it('a jump ahead past the reservation stops until a renewal records the new reservation', async () => {
    const { clock, store, open } = setup({ leaseTtlMs: 30_000 })
    const gen = await open()
    const before = gen.nextId(3)
    clock.stepWall(10 * 60_000)
    expect(codeOf(() => gen.nextId(3))).toBe('ID_CLOCK_BEHIND')
    await new Promise((r) => setImmediate(r))
    expect(store.renewCalls).toBe(1) // the failed call started a renewal
    await gen.renew()
    const after = gen.nextId(3)
    expect(compareIds(before, after)).toBe(-1)
    expect(decodeId(after).timestampMs).toBe(T0 + 10 * 60_000)
    expect(store.rows[gen.worker]!.reservedUntilMs).toBeGreaterThanOrEqual(T0 + 10 * 60_000 + 30_000)
    await gen.close()
  })

  it('random traces of steps back (1 ms-10 s), freezes and jumps: no duplicate, no decrease, errors only when beyond the window', async () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('back' as const), ms: fc.integer({ min: 1, max: 10_000 }) }),
      fc.record({ kind: fc.constant('jump' as const), ms: fc.integer({ min: 1, max: 120_000 }) }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant('renew' as const), ms: fc.constant(0) }),
    )
    const trace = fc.array(fc.record({ step, burst: fc.integer({ min: 1, max: 600 }) }), { minLength: 1, maxLength: 40 })
    await fc.assert(
      fc.asyncProperty(trace, async (ops) => {
        const maxLeadMs = 1_000
        const { clock, open } = setup({ maxLeadMs, leaseTtlMs: 30_000 })
        const gen = await open()
        const seen = new Set<string>()
        let prev = '0'
        for (const { step: s, burst } of ops) {
          if (s.kind === 'back') clock.stepWall(-s.ms)
          else if (s.kind === 'jump') clock.stepWall(s.ms)
          else if (s.kind === 'tick') clock.advance(s.ms)
          else await gen.renew()
          for (let i = 0; i < burst; i++) {
            const st = gen.status()
            const wall = clock.wallMs()
            try {
              const id = gen.nextId(i)
              const t = decodeId(id).timestampMs
              if (compareIds(prev, id) >= 0 || seen.has(id)) return false
              if (t > wall + maxLeadMs || t > gen.status().reservedUntilMs) return false
              seen.add(id)
              prev = id
            } catch (err) {
              if (!isShardkitError(err, 'ID_CLOCK_BEHIND') || !err.retryable) throw err
              // Only when the next time would be beyond the lead window or the reservation.
              const beyondLead = st.highWaterMs + 1 > wall + maxLeadMs
              const beyondReservation = Math.max(wall, st.highWaterMs + 1) > st.reservedUntilMs
              if (!beyondLead && !beyondReservation) return false
            }
          }
        }
        await gen.close()
        return true
      }),
      { numRuns: 150 },
    )
  })

  it('works at the last millisecond of the time field and refuses the next one with ID_TIME_EXHAUSTED', async () => {
    const { clock, open } = setup({ wall: ID_TIME_LIMIT_MS })
    const gen = await open()
    const ids = gen.nextIds(5, 128)
    expect(decodeId(ids.at(-1)!).time).toBe(MAX_TIME)
    expect(ids.at(-1)).toBe(encodeIdUnchecked(MAX_TIME, gen.worker, 127, 5))
    expect(codeOf(() => gen.nextId(5))).toBe('ID_TIME_EXHAUSTED')
    clock.advance(1)
    expect(codeOf(() => gen.nextId(5))).toBe('ID_TIME_EXHAUSTED')
    await gen.close()
  })

  it('refuses a clock before the 2025 epoch instead of issuing a negative time', async () => {
    const { open } = setup({ wall: ID_EPOCH_MS - 5_000 })
    const gen = await open()
    expect(codeOf(() => gen.nextId(5))).toBe('ID_CLOCK_BEHIND')
    await gen.close()
  })
})

describe('leases, restart and takeover', () => {
  it('a same-millisecond restart on the same worker starts after the first holder\'s high-water', async () => {
    const { open } = setup()
    const a = await open()
    const idsA = a.nextIds(9, 300)
    await a.close()
    const b = await open({ worker: a.worker })
    const idsB = b.nextIds(9, 300)
    expect(b.worker).toBe(a.worker)
    expect(compareIds(idsA.at(-1)!, idsB[0]!)).toBe(-1)
    expect(new Set([...idsA, ...idsB]).size).toBe(600)
    await b.close()
  })

  it('a holder that crashed is taken over by one whose clock is 10 s behind: nothing repeats', async () => {
    const { clock, store, open } = setup({ leaseTtlMs: 3_000 })
    const a = await open()
    const idsA: string[] = []
    for (let i = 0; i < 20; i++) {
      idsA.push(...a.nextIds(4, 100))
      clock.advance(10)
    }
    // A dies without closing. Its lease expires in store time; B's wall clock is set back 10 s.
    clock.advance(3_000)
    const clockB = new ManualClock(clock.wallMs() - 10_000, clock.monoMs())
    await rejectsWith(openIdGenerator({ store, clock: clockB, autoRenew: false, worker: a.worker, leaseTtlMs: 3_000 }), 'ID_CLOCK_BEHIND')
    expect(store.rows[a.worker]!.token).toBe('') // given back untouched
    const b = await openIdGenerator({ store, clock: clockB, autoRenew: false, worker: a.worker, leaseTtlMs: 3_000, maxLeadMs: 60_000 })
    const idsB = b.nextIds(4, 2_000)
    const maxA = idsA.reduce((m, id) => (compareIds(m, id) < 0 ? id : m))
    expect(compareIds(maxA, idsB[0]!)).toBe(-1)
    expect(idsB.filter((id) => idsA.includes(id))).toEqual([])
    await b.close()
  })

  it('two live generators never hold the same worker', async () => {
    const { open } = setup()
    const a = await open()
    await rejectsWith(open({ worker: a.worker }), 'ID_WORKERS_EXHAUSTED')
    await a.close()
  })

  it('all 256 leased: ID_WORKERS_EXHAUSTED, no wrap; a closed worker is reused after its high-water', async () => {
    const { open } = setup()
    const gens: IdGenerator[] = []
    for (let i = 0; i < 256; i++) gens.push(await open())
    expect(new Set(gens.map((g) => g.worker)).size).toBe(256)
    await rejectsWith(open(), 'ID_WORKERS_EXHAUSTED')
    const last = gens[17]!.nextId(1)
    await gens[17]!.close()
    const again = await open()
    expect(again.worker).toBe(gens[17]!.worker)
    expect(compareIds(last, again.nextId(1))).toBe(-1)
    for (const g of gens) await g.close()
    await again.close()
  })

  it('stops issuing before its lease can expire when renewals fail, and resumes after one succeeds', async () => {
    const { clock, store, open } = setup({ leaseTtlMs: 3_000, fenceMarginMs: 300 })
    const a = await open()
    store.failRenewals = true
    clock.advance(2_699)
    await expect(a.renew()).rejects.toThrow(/ECONNREFUSED/)
    expect(codeOf(() => a.nextId(1))).toBe('none')
    clock.advance(1)
    const err = (() => {
      try {
        a.nextId(1)
      } catch (e) {
        return e as { code: string; retryable: boolean; message: string }
      }
    })()
    expect(err?.code).toBe('ID_LEASE_LOST')
    expect(err?.retryable).toBe(true)
    expect(err?.message).toMatch(/ECONNREFUSED/)
    // The store still has the lease live: nobody else can hold the worker while A could issue.
    expect(store.rows[a.worker]!.expiresAt).toBeGreaterThan(clock.monoMs())
    await rejectsWith(open({ worker: a.worker }), 'ID_WORKERS_EXHAUSTED')
    store.failRenewals = false
    await a.renew()
    expect(codeOf(() => a.nextId(1))).toBe('none')
    await a.close()
  })

  it('a holder whose worker was taken after expiry learns it on renewal and never issues again', async () => {
    const { clock, store, open } = setup({ leaseTtlMs: 3_000 })
    const a = await open()
    clock.advance(3_001)
    const b = await open({ worker: a.worker })
    await rejectsWith(a.renew(), 'ID_LEASE_LOST')
    let err: unknown
    try {
      a.nextId(1)
    } catch (e) {
      err = e
    }
    expect(isShardkitError(err, 'ID_LEASE_LOST') && !err.retryable).toBe(true)
    await a.close() // must not release B's lease
    expect(store.rows[b.worker]!.token).not.toBe('')
    await b.close()
  })

  it('close() is idempotent and a closed generator refuses with CLOSED', async () => {
    const { open } = setup()
    const a = await open()
    await a.close()
    await a.close()
    expect(codeOf(() => a.nextId(1))).toBe('CLOSED')
  })

  it('refuses to start when its ids would not be above the legacy ceiling', async () => {
    const { open } = setup()
    const ok = await open({ legacyCeiling: '1000000000' })
    await ok.close()
    const ceiling = encodeIdUnchecked(T0 - ID_EPOCH_MS + 60_000, 0, 0, 0)
    await rejectsWith(open({ legacyCeiling: ceiling }), 'PRECONDITION_FAILED')
  })

  it('rejects options out of range, naming them', async () => {
    const { open } = setup()
    await expect(open({ leaseTtlMs: 10 })).rejects.toThrow(/leaseTtlMs/)
    await expect(open({ maxLeadMs: -1 })).rejects.toThrow(/maxLeadMs/)
    const g = await open()
    expect(() => g.nextIds(1, 0)).toThrow(/count/)
    await g.close()
  })
})
