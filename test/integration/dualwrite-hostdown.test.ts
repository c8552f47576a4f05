import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { JournalDrainer } from '../../src/dualwrite/drainer.js'
import { drainJournal, readJournalDepth, readJournalStatus } from '../../src/dualwrite/journal.js'
import { legacyLocation, shardLocation } from '../../src/dualwrite/placement.js'
import { startMariadbInstance, type MariadbInstance } from '../support/mariadb-instance.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix } from '../support/db.js'
import { FixedStage, hostPools, newOrderId, orderRow, physicalRow } from './dualwrite-support.js'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const prefix = testPrefix('dwhostdown')
let inst: MariadbInstance
let config: ShardkitConfig
let pools: ReturnType<typeof hostPools>
let rt: Runtime
let store: DualWriteStore
let stage: FixedStage
const written = new Map<string, { userId: string; merchantId: string }>()

beforeAll(async () => {
  inst = await startMariadbInstance()
  // h1 = the shared test server (legacy, control, half the shards), h2 = the instance we kill.
  config = testFleetConfig({ prefix, shardHosts: [testMysqlUrl(), inst.url] })
  pools = hostPools(config)
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  stage = new FixedStage(config, pools.get)
  await stage.set('dual-write')
  store = new DualWriteStore({ runtime: rt, stage, secondaryTimeoutMs: 1_000 })
})
afterAll(async () => {
  await rt?.close()
  await pools?.end()
  await inst?.destroy()
  await dropPrefixedDatabases(prefix)
})

/** Inserts and updates from `workers` concurrent clients; every request must succeed. */
async function traffic(n: number, workers: number, onHalf?: () => Promise<void>): Promise<void> {
  let next = 0
  let halfDone: Promise<void> | undefined
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < n) {
        const i = next++
        if (i === Math.floor(n / 2) && onHalf) halfDone = onHalf()
        const userId = String(5000 + (i % 37))
        const merchantId = String(900 + (i % 11))
        const id = newOrderId(userId)
        await store.insert(orderRow(id, userId, merchantId))
        written.set(id, { userId, merchantId })
        if (i % 3 === 0) await store.update(id, { status: 'paid', note: `n${i}` })
      }
    }),
  )
  await halfDone
}

/** Every legacy row is in its user and merchant shard, identical; no shard holds anything else. */
async function assertAllCopiesMatch(): Promise<void> {
  const legacy = legacyLocation(config)
  for (const [id, k] of written) {
    const l = await physicalRow(pools.get('legacy'), legacy, id)
    expect(l, id).toBeDefined()
    const u = shardLocation(config, 'user', k.userId)
    const m = shardLocation(config, 'merchant', k.merchantId)
    expect(await physicalRow(pools.get(u.host), u, id), `user copy of ${id}`).toEqual(l)
    expect(await physicalRow(pools.get(m.host), m, id), `merchant copy of ${id}`).toEqual(l)
  }
  for (const dim of ['user', 'merchant'] as const) {
    let total = 0
    for (const p of new Set(config.dimensions[dim].shards.map((s) => `${s.host}|${s.database}|${s.table}`))) {
      const [host, db, table] = p.split('|') as [string, string, string]
      const [rows] = await pools.get(host).query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(db, table)}`)
      total += Number(rows[0]!.n)
    }
    expect(total, `${dim} rows`).toBe(written.size)
  }
}

describe('dual writes with a shard host killed mid-traffic', () => {
  it('keeps serving, journals the misses, and drains to identical copies when the host returns', async () => {
    await traffic(120, 4, () => inst.kill())
    expect(inst.running).toBe(false)
    await store.flush()
    // The user databases on the dead host are primaries too: their depth is unknown, never reported as 0.
    await expect(readJournalDepth(rt)).rejects.toMatchObject({ code: 'SHARD_FAILED' })
    const status = await readJournalStatus(rt)
    const legacyJournal = status.find((s) => s.primary === 'legacy')!
    expect(legacyJournal.depth).toBeGreaterThan(0)
    expect(legacyJournal.oldestAgeMs).toBeGreaterThanOrEqual(0)
    expect(status.filter((s) => s.error !== undefined).map((s) => s.primary.split('/')[0])).toEqual(['h2', 'h2'])
    expect(store.stats().secondaryFailures).toBeGreaterThan(0)
    const depth = { total: legacyJournal.depth }

    // While the host is down a drain pass fails fast and keeps every entry.
    const failing = await drainJournal(rt, { secondaryTimeoutMs: 500 })
    expect(failing.replayed + failing.failed).toBe(depth.total)
    expect(failing.remaining).toBeGreaterThan(0)

    await inst.start()
    const r = await drainJournal(rt)
    expect(r).toMatchObject({ failed: 0, remaining: 0, unreachable: [] })
    await assertAllCopiesMatch()
    // replaying again is harmless
    expect(await drainJournal(rt)).toMatchObject({ replayed: 0, failed: 0, remaining: 0 })
  })

  it('the background drainer empties the journal by itself once the host is back', async () => {
    await inst.kill()
    await traffic(30, 2)
    await store.flush()
    expect((await readJournalStatus(rt)).find((s) => s.primary === 'legacy')!.depth).toBeGreaterThan(0)
    await inst.start()
    const drainer = new JournalDrainer(rt, { intervalMs: 50, minAgeMs: 0, backoff: { baseMs: 20, maxMs: 200 } })
    drainer.start()
    try {
      const deadline = Date.now() + 30_000
      while ((await readJournalDepth(rt)).total > 0) {
        if (Date.now() > deadline) throw new Error('the drainer did not empty the journal within 30 s')
        await new Promise((r) => setTimeout(r, 100))
      }
    } finally {
      await drainer.stop()
    }
    expect(drainer.running).toBe(false)
    await assertAllCopiesMatch()
  })

  it('a host that hangs (SIGSTOP: no reset, no answer) costs a write at most the secondary timeout', async () => {
    const pid = Number(readFileSync(join(dirname(inst.dataDir), 'pid'), 'utf8').trim())
    const fast = new DualWriteStore({ runtime: rt, stage, secondaryTimeoutMs: 300 })
    // users whose user shard is on h2 (the hung host)
    const users = Array.from({ length: 40 }, (_, i) => String(7000 + i)).filter((u) => shardLocation(config, 'user', u).host === 'h2').slice(0, 4)
    await store.flush()
    process.kill(pid, 'SIGSTOP')
    try {
      for (const userId of users) {
        const id = newOrderId(userId)
        const t0 = performance.now()
        await fast.insert(orderRow(id, userId, '901'))
        written.set(id, { userId, merchantId: '901' })
        // the user copy times out (300 ms); the merchant copy of 901 is on h1 and succeeds
        expect(performance.now() - t0).toBeLessThan(1_500)
      }
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    expect(fast.stats().secondaryFailures).toBe(users.length)
    await fast.flush()
    expect(await drainJournal(rt)).toMatchObject({ failed: 0, remaining: 0 })
    await assertAllCopiesMatch()
  })
})
