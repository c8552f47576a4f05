/**
 * Regressions, issue 15 defects 5 and 8: what the cutover guards believed.
 *
 * 5. `verify --since` satisfied the verify-clean guard: it was recorded like a
 *    full run, so after a full verify that found differences, a --since run
 *    that compared nothing made the guard pass. Now the guard reads the last
 *    FULL verify, and refuses when any run after it found differences.
 * 8. (found by reading; shown here first) The guards depended on machine
 *    clocks: a verify's start came from the verify host's clock, the stage's
 *    entry time from the mover's, `updated_at` from each instance's. A host
 *    one hour behind recorded a verify "before" the stage it verified; a mover
 *    one hour ahead entered a stage "after" every verify. Now each comes from
 *    the control or primary database's clock. The skewed hosts here are real
 *    `shardctl` processes whose Date is shifted (test/support/skew-clock.cjs).
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { moveStage } from '../../src/cutover/steps.js'
import { DEFAULT_GUARD_READERS, type GuardReaders } from '../../src/cutover/guards.js'
import { readDurableStage } from '../../src/cutover/switch-store.js'
import { recordVerifyRun } from '../../src/verify/index.js'
import { controlNow } from '../../src/runtime/db-clock.js'
import { legacyLocation } from '../../src/dualwrite/placement.js'
import { qualified } from '../../src/runtime/mysql.js'
import { passingReaders, walkTo } from '../integration/cutover-support.js'
import { newOrderId, orderRow } from '../integration/dualwrite-support.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { faultFleet, instanceAtDualWrite, type FaultFleet } from './support/fleet.js'
import { spawnShardctl } from './support/shardctl.js'
import type { StageWatcher } from '../../src/cutover/watcher.js'

const SKEW = join(import.meta.dirname, '..', 'support', 'skew-clock.cjs')
const HOUR = 3_600_000

let fleet: FaultFleet
let watcher: StageWatcher

beforeAll(async () => {
  fleet = await faultFleet('fguardclock')
  ;({ watcher } = await instanceAtDualWrite(fleet, 'fault-guardclock'))
})

afterAll(async () => {
  await watcher?.close()
  await fleet?.cleanup()
})

/** The real guard readers, but backfill reported complete (this fleet has no legacy rows to copy). */
const realVerifyReaders = (): GuardReaders => ({ ...passingReaders(), readLastVerify: DEFAULT_GUARD_READERS.readLastVerify })

async function verifyGuard(): Promise<{ ok: boolean; reason?: string }> {
  const s = (await readDurableStage(fleet.rt))!.state
  const percent = s.stage === 'read-shards' && s.readPercent < 100 ? { percent: 100 } : {}
  const dry = await moveStage(fleet.rt, { kind: 'advance', dryRun: true, readers: realVerifyReaders(), ...percent })
  const g = dry.guards.find((x) => x.guard === 'verify-clean')!
  return { ok: g.ok, ...(g.reason ? { reason: g.reason } : {}) }
}

function shardctl(args: string[], skewMs: number) {
  return spawnShardctl(fleet.configPath, args, { env: { NODE_OPTIONS: `--require ${SKEW}`, SHARDKIT_TEST_CLOCK_SKEW_MS: String(skewMs) } }).done
}

describe('the verify-clean guard', () => {
  it('defect 5: a --since run never satisfies it; a full run that found differences stands until a full run is clean', async () => {
    await walkTo(fleet.rt, 'shadow-read', 100, { ackTimeoutMs: 10_000 })
    const startedAt = await controlNow(fleet.rt)
    await recordVerifyRun(fleet.rt, { dimension: 'all', since: null, startedAt, clean: false, differences: 2, rowsCompared: 1000, summary: {} })
    // `verify --since` compared 0 rows, clean.
    await recordVerifyRun(fleet.rt, { dimension: 'all', since: new Date().toISOString(), startedAt: await controlNow(fleet.rt), clean: true, differences: 0, rowsCompared: 0, summary: {} })
    const g = await verifyGuard()
    expect(g.ok, 'a --since run made the guard pass').toBe(false)
    expect(g.reason).toContain('2 differing rows')
    // A later --since run that finds differences keeps even a clean full run from counting.
    await recordVerifyRun(fleet.rt, { dimension: 'all', since: null, startedAt: await controlNow(fleet.rt), clean: true, differences: 0, rowsCompared: 1000, summary: {} })
    expect((await verifyGuard()).ok).toBe(true)
    await recordVerifyRun(fleet.rt, { dimension: 'all', since: new Date().toISOString(), startedAt: await controlNow(fleet.rt), clean: false, differences: 1, rowsCompared: 5, summary: {} })
    expect(await verifyGuard()).toMatchObject({ ok: false, reason: expect.stringContaining('after the last full one') })
  })

  it('defect 8: a verify run from a host one hour behind, after the stage was entered, satisfies the guard', async () => {
    await moveStage(fleet.rt, { kind: 'advance', percent: 10, readers: passingReaders(), actor: 'test' })
    const v = await shardctl(['verify', '--json'], -HOUR)
    expect(v.code, v.stderr).toBe(0)
    const g = await verifyGuard()
    expect(g, 'the verify looked older than the stage because its host clock is behind').toMatchObject({ ok: true })
  })

  it('defect 8: a stage entered by a mover one hour ahead does not make every verify look too old', async () => {
    const m = await shardctl(['cutover', 'rollback', '--json'], HOUR) // read-shards -> shadow-read: a stage change
    expect(m.code, m.stderr).toBe(0)
    const durable = (await readDurableStage(fleet.rt))!
    const dbNow = Date.parse(await controlNow(fleet.rt))
    expect(Math.abs(Date.parse(durable.stageEnteredAt!) - dbNow)).toBeLessThan(60_000)
    const v = await shardctl(['verify', '--json'], 0)
    expect(v.code, v.stderr).toBe(0)
    expect((await verifyGuard()).ok).toBe(true)
  })

  it('defect 8: updated_at is the primary database clock, whatever the instance clock says', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() - HOUR)
      // An instance started on a machine whose clock is an hour behind.
      const skewed = new DualWriteStore({ runtime: fleet.rt, stage: watcher })
      const id = newOrderId('81001')
      await skewed.insert(orderRow(id, '81001', '8101'))
      const l = legacyLocation(fleet.config)
      const [[r]] = (await fleet.rt.legacy().query<RowDataPacket[]>(`SELECT updated_at, UTC_TIMESTAMP(3) AS now FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [id])) as unknown as [RowDataPacket[]]
      const stamped = Date.parse(`${String(r!.updated_at).replace(' ', 'T')}Z`)
      const now = Date.parse(`${String(r!.now).replace(' ', 'T')}Z`)
      expect(Math.abs(now - stamped), 'updated_at came from the instance clock').toBeLessThan(60_000)
    } finally {
      vi.useRealTimers()
    }
  })
})
