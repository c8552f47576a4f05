/**
 * The MySQL lease store against the real server: compare-and-set acquisition
 * under concurrency, expiry by database time, exhaustion, release with the
 * high-water, renewal keeping a lease alive, and the generator on top of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { CONTROL_TABLES } from '../../src/control/tables.js'
import { isShardkitError, type ShardkitErrorCode } from '../../src/errors.js'
import { openIdGenerator } from '../../src/idgen/generator.js'
import { compareIds, decodeId } from '../../src/idgen/layout.js'
import { LEASE_TABLE, MysqlLeaseStore, WORKER_COUNT, ensureLeaseSchema, type LeaseGrant } from '../../src/idgen/lease.js'
import { createMysqlPool, qualified } from '../../src/runtime/mysql.js'
import { adminPool, dropPrefixedDatabases, testMysqlUrl, testPrefix } from '../support/db.js'

const prefix = testPrefix('idgenlease')
let pool: Pool
let n = 0
/** A fresh control database per test, so leases do not leak between tests. */
async function freshDb(): Promise<string> {
  const db = `${prefix}c${++n}`
  await ensureLeaseSchema(pool, db, { createDatabase: true })
  return db
}

async function rejectsWith(p: Promise<unknown>, code: ShardkitErrorCode): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isShardkitError(err, code), `expected ${code}, got ${String(err)}`).toBe(true)
  return err as Error
}

async function row(db: string, worker: number): Promise<RowDataPacket> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT *, (lease_expires_at <= UTC_TIMESTAMP(3)) AS free FROM ${qualified(db, LEASE_TABLE)} WHERE worker_id = ?`,
    [worker],
  )
  return rows[0]!
}

async function untilFree(db: string, worker: number): Promise<void> {
  while (Number((await row(db, worker)).free) !== 1) await new Promise((r) => setTimeout(r, 50))
}

const req = (over: Partial<{ ttlMs: number; reserveUntilMs: number; worker: number }> = {}) => ({ owner: 'test', ttlMs: 60_000, reserveUntilMs: Date.now() + 60_000, ...over })

beforeAll(() => {
  pool = adminPool()
})
afterAll(async () => {
  await pool?.end()
  await dropPrefixedDatabases(prefix)
})

describe('MysqlLeaseStore', () => {
  it('ensureLeaseSchema creates the table of CONTROL_TABLES with 256 free rows, idempotently', async () => {
    const db = await freshDb()
    await ensureLeaseSchema(pool, db)
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n, SUM(lease_expires_at <= UTC_TIMESTAMP(3)) AS free FROM ${qualified(db, LEASE_TABLE)}`)
    expect(Number(rows[0]!.n)).toBe(256)
    expect(Number(rows[0]!.free)).toBe(256)
    expect(CONTROL_TABLES.some((t) => t.name === LEASE_TABLE)).toBe(true)
  })

  it('seeds the rows itself when provision created the table empty', async () => {
    const db = `${prefix}empty`
    await pool.query(`CREATE DATABASE ${'`' + db + '`'}`)
    await pool.query(CONTROL_TABLES.find((t) => t.name === LEASE_TABLE)!.ddl(db))
    const g = await new MysqlLeaseStore(pool, db).acquire(req())
    expect(g.worker).toBe(0)
  })

  it('40 concurrent acquisitions over separate connections get 40 different workers', async () => {
    const db = await freshDb()
    const p2 = createMysqlPool(testMysqlUrl(), { connectionLimit: 20 })
    try {
      const store = new MysqlLeaseStore(p2, db)
      const grants = await Promise.all(Array.from({ length: 40 }, () => store.acquire(req())))
      expect(new Set(grants.map((g) => g.worker)).size).toBe(40)
      expect(new Set(grants.map((g) => g.token)).size).toBe(40)
    } finally {
      await p2.end()
    }
  })

  it('all 256 leased: the 257th gets ID_WORKERS_EXHAUSTED (no wrap); a released worker comes back with its high-water', async () => {
    const db = await freshDb()
    const store = new MysqlLeaseStore(pool, db)
    const grants: LeaseGrant[] = []
    for (let i = 0; i < WORKER_COUNT; i++) grants.push(await store.acquire(req()))
    expect(new Set(grants.map((g) => g.worker)).size).toBe(256)
    const err = await rejectsWith(store.acquire(req()), 'ID_WORKERS_EXHAUSTED')
    expect(err.message).toMatch(/all 256 id-generator workers are leased/)
    const g = grants[100]!
    const hw = Date.now() + 5
    await store.release(g.worker, g.token, hw)
    const again = await store.acquire(req())
    expect(again.worker).toBe(g.worker)
    expect(again.highWaterMs).toBe(hw)
    // The old token is now powerless: renew says lost, release changes nothing.
    await rejectsWith(store.renew(g.worker, g.token, 60_000, Date.now()), 'ID_LEASE_LOST')
    await store.release(g.worker, g.token, 0)
    expect((await row(db, g.worker)).owner_token).toBe(again.token)
  })

  it('a lease expires by database time; the next holder sees the reservation as its high-water', async () => {
    const db = await freshDb()
    const store = new MysqlLeaseStore(pool, db)
    const reserve = Date.now() + 400
    const a = await store.acquire(req({ ttlMs: 400, reserveUntilMs: reserve, worker: 9 }))
    await rejectsWith(store.acquire(req({ worker: 9 })), 'ID_WORKERS_EXHAUSTED')
    await untilFree(db, 9)
    const b = await store.acquire(req({ worker: 9 }))
    expect(b.highWaterMs).toBe(reserve)
    expect(b.worker).toBe(a.worker)
    await rejectsWith(store.renew(9, a.token, 400, Date.now()), 'ID_LEASE_LOST')
  })

  it('renewal keeps a lease alive past its TTL and only raises the reservation', async () => {
    const db = await freshDb()
    const store = new MysqlLeaseStore(pool, db)
    const a = await store.acquire(req({ ttlMs: 500, worker: 3 }))
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 200))
      await store.renew(3, a.token, 500, 1_000) // a lower reservation must not lower the row
    }
    expect(Number((await row(db, 3)).free)).toBe(0)
    expect(Number((await row(db, 3)).reserved_until_ms)).toBe(a.reservedUntilMs)
  })
})

describe('the generator on the MySQL store', () => {
  it('renews on its timer, issues, and on close records its last id time as the high-water', async () => {
    const db = await freshDb()
    const gen = await openIdGenerator({ store: new MysqlLeaseStore(pool, db), leaseTtlMs: 600, owner: 'itest' })
    const ids: string[] = []
    const until = Date.now() + 1_500
    while (Date.now() < until) {
      ids.push(...(await gen.nextIdsAsync('42', 200)))
      await new Promise((r) => setTimeout(r, 20))
    }
    // 1.5 s is past the 600 ms TTL: only renewals kept it issuing.
    expect(gen.status().state).toBe('active')
    const r = await row(db, gen.worker)
    expect(r.owner).toBe('itest')
    expect(Number(r.reserved_until_ms)).toBeGreaterThan(Date.now())
    await gen.close()
    const after = await row(db, gen.worker)
    expect(Number(after.free)).toBe(1)
    expect(Number(after.reserved_until_ms)).toBe(decodeId(ids.at(-1)!).timestampMs)
    const next = await openIdGenerator({ store: new MysqlLeaseStore(pool, db), worker: gen.worker })
    expect(compareIds(ids.at(-1)!, next.nextId('42'))).toBe(-1)
    await next.close()
  })
})
