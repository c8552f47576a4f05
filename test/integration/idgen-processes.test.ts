/**
 * Generators in separate processes, leasing from the real MySQL lease table:
 * eight at once never repeat an id; a holder killed with SIGKILL is taken over
 * by a process whose clock is set back, and none of its ids is issued again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { ensureLeaseSchema, LEASE_TABLE } from '../../src/idgen/lease.js'
import { compareIds, decodeId, shardFieldUnchecked } from '../../src/idgen/layout.js'
import { qualified } from '../../src/runtime/mysql.js'
import { adminPool, dropPrefixedDatabases, testMysqlUrl, testPrefix } from '../support/db.js'
import { spawnIdChild, type IdChild } from '../support/idgen-spawn.js'

const prefix = testPrefix('idgenproc')
const database = `${prefix}control`
let pool: Pool
const children: IdChild[] = []

function child(args: Omit<Parameters<typeof spawnIdChild>[0], 'url' | 'database'>): IdChild {
  const c = spawnIdChild({ url: testMysqlUrl(), database, ...args })
  children.push(c)
  return c
}

async function leaseRow(worker: number): Promise<{ reserved: number; free: boolean; owner: string }> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT reserved_until_ms, owner, (lease_expires_at <= UTC_TIMESTAMP(3)) AS free FROM ${qualified(database, LEASE_TABLE)} WHERE worker_id = ?`,
    [worker],
  )
  return { reserved: Number(rows[0]!.reserved_until_ms), free: Number(rows[0]!.free) === 1, owner: String(rows[0]!.owner) }
}

/** How long the worker's lease still has by the database clock (ms, 0 when expired). */
async function leaseLeftMs(worker: number): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT GREATEST(0, TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(3), lease_expires_at)) AS us FROM ${qualified(database, LEASE_TABLE)} WHERE worker_id = ?`, [worker])
  return Number(rows[0]!.us) / 1000
}

function expectIncreasing(ids: readonly string[]): void {
  for (let i = 1; i < ids.length; i++) if (compareIds(ids[i - 1]!, ids[i]!) >= 0) throw new Error(`not increasing at ${i}: ${ids[i - 1]} then ${ids[i]}`)
}

const maxOf = (ids: readonly string[]): string => ids.reduce((m, id) => (compareIds(m, id) < 0 ? id : m))
const minOf = (ids: readonly string[]): string => ids.reduce((m, id) => (compareIds(m, id) > 0 ? id : m))

beforeAll(async () => {
  pool = adminPool()
  await ensureLeaseSchema(pool, database, { createDatabase: true })
})

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
  await Promise.all(children.map((c) => c.exited))
  await pool?.end()
  await dropPrefixedDatabases(prefix)
})

describe('id generators in separate processes', () => {
  it('8 processes holding leases at the same time issue no duplicate', async () => {
    const users = ['0', '1', '119', '120', '12345', '9007199254740991', '9223372036854775807', '777']
    const procs = users.map((user) => child({ user, ttlMs: 5_000, maxLeadMs: 1_000, count: 20_000, waitForGo: true }))
    const opened = await Promise.all(procs.map((p) => p.waitFor('open')))
    expect(opened.map((e) => e.event)).toEqual(Array(8).fill('open'))
    // All eight hold a lease now: eight different workers.
    expect(new Set(opened.map((e) => e.worker)).size).toBe(8)
    for (const p of procs) p.proc.stdin!.write('go\n')
    const done = await Promise.all(procs.map((p) => p.waitFor('done')))
    expect(done.map((e) => e.event)).toEqual(Array(8).fill('done'))
    const all = new Set<string>()
    procs.forEach((p, i) => {
      expect(p.ids).toHaveLength(20_000)
      expectIncreasing(p.ids)
      const shard = Number(BigInt(users[i]!) % 120n)
      expect(p.ids.every((id) => shardFieldUnchecked(id) === shard)).toBe(true)
      for (const id of p.ids) all.add(id)
    })
    expect(all.size).toBe(8 * 20_000)
    await Promise.all(procs.map((p) => p.exited))
    // Each released its worker on close, recording its last id time as the high-water.
    for (const [i, p] of procs.entries()) {
      const row = await leaseRow(opened[i]!.worker!)
      expect(row.free).toBe(true)
      expect(row.reserved).toBe(decodeId(p.ids.at(-1)!).timestampMs)
    }
  }, 90_000)

  it('takeover: the holder of worker W is SIGKILLed; a process whose clock is set back takes W and repeats none of its ids', async () => {
    const a = child({ user: '12345', ttlMs: 1_500, maxLeadMs: 1_000, forever: true })
    const openA = await a.waitFor('open')
    expect(openA.event).toBe('open')
    const w = openA.worker!
    // Let A run through a few renewals (every 500 ms) before it dies mid-stream.
    await a.waitForIds(20_000)
    await new Promise((r) => setTimeout(r, 700))
    a.proc.kill('SIGKILL')
    const exitA = await a.exited
    expect(exitA.signal).toBe('SIGKILL')
    const idsA = [...a.ids]
    expectIncreasing(idsA)
    const maxA = maxOf(idsA)
    const rowA = await leaseRow(w)
    expect(rowA.owner).toMatch(/^idgen-child:/) // never released: it was killed
    expect(rowA.reserved).toBeGreaterThanOrEqual(decodeId(maxA).timestampMs)

    // While A's lease is live (database time), nobody else gets W. A child takes a second or more to
    // start on a busy machine, so the check is made only if the lease has that long to live, and then
    // judged by where the lease stood when the child asked (never by a wall-clock guess).
    if ((await leaseLeftMs(w)) > 800) {
      const early = child({ user: '12345', ttlMs: 1_500, maxLeadMs: 60_000, worker: w, count: 10 })
      const first = await early.waitFor('open')
      if (first.event === 'open') {
        // It got W: only legitimate if A's lease had run out by then (the child was slow to start).
        expect((await leaseRow(w)).owner).not.toMatch(new RegExp(`^idgen-child:${a.proc.pid}\\b`))
        expect(first.highWaterMs).toBeGreaterThanOrEqual(rowA.reserved)
        await early.exited
      } else expect(first).toMatchObject({ event: 'error', code: 'ID_WORKERS_EXHAUSTED' })
    }
    while (!(await leaseRow(w)).free) await new Promise((r) => setTimeout(r, 100))
    // The high-water the next holder must start after: A's (or the early child's, if it got W).
    const prior = (await leaseRow(w)).reserved
    expect(prior).toBeGreaterThanOrEqual(rowA.reserved)

    // B's clock is 5 s behind A's. It starts after A's recorded high-water, ahead of its own clock.
    const b = child({ user: '12345', ttlMs: 1_500, maxLeadMs: 60_000, offsetMs: -5_000, worker: w, count: 5_000 })
    const openB = await b.waitFor('open')
    expect(openB).toMatchObject({ event: 'open', worker: w, highWaterMs: prior })
    expect(await b.waitFor('done')).toMatchObject({ event: 'done' })
    expect(b.ids).toHaveLength(5_000)
    const setA = new Set(idsA)
    expect(b.ids.filter((id) => setA.has(id))).toEqual([])
    expect(compareIds(maxA, minOf(b.ids))).toBe(-1)
    expect(decodeId(minOf(b.ids)).timestampMs).toBeGreaterThan(prior)
    await b.exited

    // C's clock is 10 s behind with the default 1 s window: it refuses instead of issuing.
    const c = child({ user: '12345', ttlMs: 1_500, maxLeadMs: 1_000, offsetMs: -10_000, worker: w, count: 10 })
    expect(await c.waitFor('open')).toMatchObject({ event: 'error', code: 'ID_CLOCK_BEHIND' })
    await c.exited
    expect(c.ids).toEqual([])
    const rowC = await leaseRow(w)
    expect(rowC.free).toBe(true)
    expect(rowC.reserved).toBe(decodeId(b.ids.at(-1)!).timestampMs)
  }, 90_000)
})
