/**
 * Issue 17 point 3: a control-database failover that loses the last lease
 * write. Simulated by restoring the lease row to the copy it had when the
 * first holder took it (a replica that missed every renewal). Two generators
 * on the real MariaDB and Redis, both issuing while the rolled-back row lets
 * the second take the worker:
 * - with the Redis high-water mirror intact: zero duplicate ids;
 * - with Redis having lost the mirror too (the documented remaining
 *   condition): the new holder detects it and issues nothing until the old
 *   holder must have stopped; still zero duplicates;
 * - an unpinned new holder avoids the rolled-back worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { isShardkitError } from '../../src/errors.js'
import { openIdGenerator, type IdGenerator } from '../../src/idgen/generator.js'
import { decodeId } from '../../src/idgen/layout.js'
import { LEASE_TABLE, MysqlLeaseStore, WORKER_COUNT, ensureLeaseSchema, type LeaseStore } from '../../src/idgen/lease.js'
import { MirroredLeaseStore, RedisLeaseMirror } from '../../src/idgen/mirror.js'
import { createMysqlPool, qualified } from '../../src/runtime/mysql.js'
import { adminPool, dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'

const prefix = testPrefix('idgenfailover')
const keyPrefix = `${prefix}:`
let admin: Pool
let poolA: Pool
let poolB: Pool
let redis: Redis
let n = 0
/** Long enough that A cannot fence itself while the test runs on a loaded machine. */
const TTL = 10_000
/** The wait-out test waits one TTL: short there. */
const SHORT_TTL = 1_500
/** A bound on the both-generating loops, so a stalled generator fails an assertion instead of hanging the file. */
const LOOP_BOUND_MS = 8_000
const W = 7

async function freshDb(): Promise<string> {
  const db = `${prefix}c${++n}`
  await ensureLeaseSchema(admin, db, { createDatabase: true })
  return db
}

/** A generator process's store: its own pool, the lease row plus the Redis mirror. */
function storeFor(pool: Pool, db: string): LeaseStore {
  return new MirroredLeaseStore(new MysqlLeaseStore(pool, db), new RedisLeaseMirror({ redis, keyPrefix: `${keyPrefix}${db}:` }))
}

const COLS = ['owner', 'owner_token', 'version', 'lease_expires_at', 'reserved_until_ms', 'acquired_at', 'renewed_at', 'released_at'] as const

async function snapshot(db: string, worker: number): Promise<RowDataPacket> {
  const [rows] = await admin.query<RowDataPacket[]>(`SELECT ${COLS.join(', ')} FROM ${qualified(db, LEASE_TABLE)} WHERE worker_id = ?`, [worker])
  return rows[0]!
}

/** The lost write: the row goes back to an older copy, as a replica that missed the later commits would have it. */
async function restore(db: string, worker: number, row: RowDataPacket): Promise<void> {
  await admin.query(`UPDATE ${qualified(db, LEASE_TABLE)} SET ${COLS.map((c) => `${c} = ?`).join(', ')} WHERE worker_id = ?`, [...COLS.map((c) => row[c] as unknown), worker])
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Asks `gen` for up to `k` ids now; returns them (none when it refuses for the moment or lost its lease). */
function ask(gen: IdGenerator, k: number, into: string[]): number {
  let got = 0
  for (let i = 0; i < k; i++) {
    let id: string | undefined
    try {
      id = gen.tryNextId(12345)
    } catch (err) {
      if (isShardkitError(err, 'ID_LEASE_LOST')) return got
      throw err
    }
    if (id === undefined) return got
    into.push(id)
    got++
  }
  return got
}

function duplicates(ids: readonly string[]): number {
  return ids.length - new Set(ids).size
}

beforeAll(() => {
  admin = adminPool()
  poolA = createMysqlPool(testMysqlUrl(), { connectionLimit: 2 })
  poolB = createMysqlPool(testMysqlUrl(), { connectionLimit: 2 })
  redis = new Redis(testRedisUrl())
})
afterAll(async () => {
  const keys = await redis.keys(`${keyPrefix}*`)
  if (keys.length > 0) await redis.del(...keys)
  redis.disconnect()
  await Promise.all([admin?.end(), poolA?.end(), poolB?.end()])
  await dropPrefixedDatabases(prefix)
})

/** A mirror in use: every worker has a record (on first use a generator would wait out its TTL; tested below). */
async function seedMirror(db: string): Promise<void> {
  const seed = redis.pipeline()
  for (let w = 0; w < WORKER_COUNT; w++) seed.hset(`${keyPrefix}${db}:idgen:w:${w}`, { hw: '0', token: '', owner: '' })
  await seed.exec()
}

/**
 * A first holder P opens and closes W on a mirror in use, the row as
 * P left it is kept as the "old copy", then A takes W and renews once: A's
 * acquisition and renewal are the writes the failover will lose. A renews
 * only when the test says (autoRenew false), so who knows what and when is
 * the test's choice, not a timer's.
 */
async function prepare(db: string, worker: number | undefined, ttl = TTL): Promise<{ a: IdGenerator; old: RowDataPacket; idsA: string[] }> {
  await seedMirror(db)
  const p = await openIdGenerator({ store: storeFor(poolA, db), worker, leaseTtlMs: ttl, owner: 'P' })
  const w = p.worker
  await p.close()
  const old = await snapshot(db, w)
  const a = await openIdGenerator({ store: storeFor(poolA, db), worker: w, leaseTtlMs: ttl, owner: 'A', autoRenew: false })
  expect(a.status().holdMs).toBe(0)
  const idsA: string[] = []
  for (let i = 0; i < 20; i++) {
    ask(a, 32, idsA)
    await turn()
  }
  await a.renew()
  expect(idsA.length).toBeGreaterThan(0)
  return { a, old, idsA }
}

describe('id generator under a lost lease write (issue 17 point 3)', () => {
  it('two generators, the lease row restored to an old copy mid-run, both generating: zero duplicate ids (mirror intact)', async () => {
    const db = await freshDb()
    const { a, old, idsA } = await prepare(db, W)
    const idsB: string[] = []
    try {
      await restore(db, W, old)
      // B takes the worker on the rolled-back row while A is still issuing.
      // maxLeadMs lets B issue at once above A's reservation instead of refusing.
      const b = await openIdGenerator({ store: storeFor(poolB, db), worker: W, leaseTtlMs: TTL, maxLeadMs: 60_000, owner: 'B' })
      let aAfterB = 0
      try {
        expect(b.worker).toBe(a.worker)
        const bound = performance.now() + LOOP_BOUND_MS
        while ((idsB.length < 3_200 || aAfterB < 320) && performance.now() < bound) {
          aAfterB += ask(a, 32, idsA)
          ask(b, 32, idsB)
          await turn()
        }
        expect(aAfterB, 'A stopped issuing once B took the worker; the test would prove nothing').toBeGreaterThanOrEqual(320)
        // A finds out at its next renewal, and stops.
        const lost = await a.renew().then(() => undefined, (e: unknown) => e)
        expect(isShardkitError(lost, 'ID_LEASE_LOST'), String(lost)).toBe(true)
        expect(ask(a, 1, idsA)).toBe(0)
        while (idsB.length < 6_400) {
          ask(b, 32, idsB)
          await turn()
        }
      } finally {
        await b.close()
      }
      expect(new Set([...idsA, ...idsB].map((id) => decodeId(id).worker))).toEqual(new Set([W]))
      const all = [...idsA, ...idsB]
      expect(duplicates(all), `${duplicates(all)} of ${all.length} ids from the two generators were the same`).toBe(0)
    } finally {
      await a.close()
    }
  })

  it('the remaining condition, row rolled back AND Redis lost the mirror: the new holder detects it and waits out the old one; zero duplicates', async () => {
    const db = await freshDb()
    const { a, old, idsA } = await prepare(db, W, SHORT_TTL)
    const idsB: string[] = []
    try {
      await restore(db, W, old)
      // Redis lost its data at the same time (a restart without persistence): this test's keys only.
      const keys = await redis.keys(`${keyPrefix}${db}:*`)
      expect(keys.length).toBeGreaterThan(0)
      await redis.del(...keys)
      // Same TTL and maxLeadMs as A: the wait-out is sized by them.
      const b = await openIdGenerator({ store: storeFor(poolB, db), worker: W, leaseTtlMs: SHORT_TTL, owner: 'B' })
      try {
        expect(b.status().holdMs, 'B did not notice that the mirror had lost the high-water').toBeGreaterThan(SHORT_TTL)
        const refusal = (() => {
          try {
            b.nextId(1)
          } catch (err) {
            return err
          }
        })()
        expect(isShardkitError(refusal, 'ID_CLOCK_BEHIND') && refusal.retryable, String(refusal)).toBe(true)
        expect((refusal as Error).message).toMatch(/no record in the Redis mirror/)
        const ready = b.ready()
        // A never learns (no renewal): the worst case. It keeps issuing until its own fence.
        let aAfterB = 0
        const bound = performance.now() + b.status().holdMs + LOOP_BOUND_MS
        while (idsB.length < 3_000 && performance.now() < bound) {
          aAfterB += ask(a, 32, idsA)
          ask(b, 32, idsB)
          await turn()
        }
        expect(idsB.length, 'B never started issuing after its wait-out').toBeGreaterThanOrEqual(3_000)
        expect(aAfterB, 'A issued no id after B took the worker; the test would prove nothing').toBeGreaterThan(0)
        await ready
        expect(b.status().holdMs).toBe(0)
        const aLast = idsA.reduce((m, id) => Math.max(m, decodeId(id).timestampMs), 0)
        // B's first id comes after every id A issued: B started at its own clock once A had fenced itself.
        expect(decodeId(idsB[0]!).timestampMs).toBeGreaterThan(aLast)
      } finally {
        await b.close()
      }
      const all = [...idsA, ...idsB]
      expect(duplicates(all), `${duplicates(all)} of ${all.length} ids were the same`).toBe(0)
    } finally {
      await a.close()
    }
  })

  it('row rolled back AND Redis lost, and the new holder closes during its wait-out: the next holder still starts above the old one', async () => {
    const db = await freshDb()
    const { a, old, idsA } = await prepare(db, W)
    try {
      await restore(db, W, old)
      await redis.del(...(await redis.keys(`${keyPrefix}${db}:*`)))
      const b = await openIdGenerator({ store: storeFor(poolB, db), worker: W, leaseTtlMs: TTL, owner: 'B' })
      expect(b.status().holdMs).toBeGreaterThan(0)
      await b.close()
      // C finds B's record and trusts it: it must carry the end of B's wait-out, not the rolled-back row's value.
      const c = await openIdGenerator({ store: storeFor(poolB, db), worker: W, leaseTtlMs: TTL, maxLeadMs: 60_000, owner: 'C' })
      const idsC: string[] = []
      try {
        expect(c.status().holdMs).toBe(0)
        let aAfterC = 0
        const bound = performance.now() + LOOP_BOUND_MS
        while ((idsC.length < 3_200 || aAfterC < 320) && performance.now() < bound) {
          aAfterC += ask(a, 32, idsA)
          ask(c, 32, idsC)
          await turn()
        }
        expect(aAfterC, 'A stopped issuing once C took the worker; the test would prove nothing').toBeGreaterThanOrEqual(320)
        expect(idsC.length).toBeGreaterThanOrEqual(3_200)
      } finally {
        await c.close()
      }
      const all = [...idsA, ...idsC]
      expect(duplicates(all), `${duplicates(all)} of ${all.length} ids were the same`).toBe(0)
    } finally {
      await a.close()
    }
  })

  it('Redis alone lost its data while A runs: A recreates the record at its next renewal; the next holder finds it and does not wait', async () => {
    const db = await freshDb()
    const { a } = await prepare(db, W)
    await redis.del(...(await redis.keys(`${keyPrefix}${db}:*`)))
    await a.renew()
    const ceiling = a.status().reservedUntilMs
    expect(Number(await redis.hget(`${keyPrefix}${db}:idgen:w:${W}`, 'hw'))).toBe(ceiling)
    const last = a.status().highWaterMs
    await a.close()
    const b = await openIdGenerator({ store: storeFor(poolB, db), worker: W, leaseTtlMs: TTL, owner: 'B' })
    try {
      expect(b.status().holdMs).toBe(0)
      expect(decodeId(b.nextId(1)).timestampMs).toBeGreaterThan(last)
    } finally {
      await b.close()
    }
  })

  it('Redis unreachable at a renewal: the renewal fails, the reservation is not raised, and the generator stays within what both stores recorded', async () => {
    const db = await freshDb()
    await seedMirror(db)
    const p = await openIdGenerator({ store: storeFor(poolA, db), worker: W, leaseTtlMs: TTL, owner: 'P' })
    await p.close()
    const down = new Redis(testRedisUrl(), { maxRetriesPerRequest: 0, retryStrategy: () => null })
    const store = new MirroredLeaseStore(new MysqlLeaseStore(poolA, db), new RedisLeaseMirror({ redis: down, keyPrefix: `${keyPrefix}${db}:` }))
    const a = await openIdGenerator({ store, worker: W, leaseTtlMs: TTL, owner: 'A', autoRenew: false })
    try {
      const before = a.status().reservedUntilMs
      down.disconnect()
      const err = await a.renew().then(() => undefined, (e: unknown) => e)
      expect(isShardkitError(err, 'REDIS_ERROR') && err.retryable, String(err)).toBe(true)
      expect(a.status().reservedUntilMs).toBe(before)
      expect(a.status().state).toBe('active')
      expect(Number(await redis.hget(`${keyPrefix}${db}:idgen:w:${W}`, 'hw'))).toBe(before)
    } finally {
      await a.close()
      down.disconnect()
    }
  })

  it('an unpinned new holder does not take the rolled-back worker: the mirror shows its reservation', async () => {
    const db = await freshDb()
    const { a, old } = await prepare(db, undefined)
    try {
      // Make the rolled-back row the most attractive free one by the table alone.
      await admin.query(`UPDATE ${qualified(db, LEASE_TABLE)} SET reserved_until_ms = ? WHERE worker_id <> ?`, [Date.now() - 1, a.worker])
      old.reserved_until_ms = '0'
      await restore(db, a.worker, old)
      const b = await openIdGenerator({ store: storeFor(poolB, db), leaseTtlMs: TTL, owner: 'B' })
      try {
        expect(b.worker).not.toBe(a.worker)
      } finally {
        await b.close()
      }
    } finally {
      await a.close()
    }
  })
})
