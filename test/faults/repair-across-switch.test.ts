/**
 * Regression, issue 15 defect 2: `repair --execute` across a write switch
 * overwrote the new primary. It read the stage once at the start, and its
 * upserts were neither fenced nor version-guarded: a repair that started at
 * read-shards (source legacy) went on after the switch to write-shards and
 * wrote legacy's older row over an update the user shard (now the primary)
 * had acknowledged. Now each key is repaired under its primary's fence at the
 * repair's stage: a switch waits for the key in hand, and the next key is
 * refused, so the repair stops.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StageWatcher } from '../../src/cutover/watcher.js'
import type { DualWriteStore } from '../../src/dualwrite/store.js'
import { moveStage } from '../../src/cutover/steps.js'
import { runRepair, type Difference } from '../../src/verify/index.js'
import { shardLocation, legacyLocation } from '../../src/dualwrite/placement.js'
import { qualified } from '../../src/runtime/mysql.js'
import type { RowDataPacket } from 'mysql2/promise'
import { newOrderId, orderRow } from '../integration/dualwrite-support.js'
import { passingReaders, until, walkTo } from '../integration/cutover-support.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, instanceAtDualWrite, type FaultFleet } from './support/fleet.js'

let fleet: FaultFleet
let watcher: StageWatcher
let store: DualWriteStore

beforeAll(async () => {
  fleet = await faultFleet('frepairsw')
  ;({ watcher, store } = await instanceAtDualWrite(fleet, 'fault-repairsw'))
  await walkTo(fleet.rt, 'read-shards', 100, { ackTimeoutMs: 10_000 })
  await until(() => watcher.current()?.readPercent === 100, 5_000, 'the watcher')
})

afterAll(async () => {
  await watcher?.close()
  await fleet?.cleanup()
})

async function noteIn(side: 'legacy' | 'user' | 'merchant', id: string, userId: string, merchantId: string): Promise<{ note: string | null; version: number } | undefined> {
  const l = side === 'legacy' ? legacyLocation(fleet.config) : shardLocation(fleet.config, side, side === 'user' ? userId : merchantId)
  const pool = side === 'legacy' ? fleet.rt.legacy() : fleet.rt.host(l.host)
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT note, version FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [id])
  return rows[0] ? { note: rows[0].note as string | null, version: Number(rows[0].version) } : undefined
}

describe('defect 2: repair --execute across a write switch', () => {
  it('never writes over an update the new primary acknowledged; it stops at the switch', async () => {
    const a = { id: newOrderId('52001'), u: '52001', m: '5201' }
    const b = { id: newOrderId('52002'), u: '52002', m: '5202' }
    for (const o of [a, b]) await store.insert(orderRow(o.id, o.u, o.m, { note: 'v1' }))
    await store.flush()
    // Both merchant copies damaged: the report names A, then B.
    for (const o of [a, b]) {
      const l = shardLocation(fleet.config, 'merchant', o.m)
      await fleet.rt.host(l.host).query(`UPDATE ${qualified(l.database, l.table)} SET note = 'damaged' WHERE order_id = ?`, [o.id])
    }
    const report: Difference[] = [a, b].map((o) => ({ pair: 'legacy-merchant', kind: 'different', key: o.id }))

    const hooks = HookServer.inProcess()
    let updated = false
    let repairErr: unknown
    try {
      // Hold the repair after its first statement on B (source read from legacy, v1).
      const held = hooks.waitFor('repair.statement-applied', { where: (d) => d.key === b.id })
      const repairing = runRepair(fleet.rt, report, { execute: true }).catch((err: unknown) => {
        repairErr = err
        return undefined
      })
      const at = await held
      // The switch to write-shards, on the operator's own runtime, with a budget that lets it wait for the key in hand.
      const own = fleet.instance()
      const moving = moveStage(own, { kind: 'advance', readers: passingReaders(), actor: 'fault-test', fenceBudgetMs: 20_000, ackTimeoutMs: 20_000, drainTimeoutMs: 20_000 })
      // If the switch completes while the repair holds B (it did before the fix), update B on the new primary now.
      const early = await Promise.race([moving.then((r) => r.outcome), new Promise<'pending'>((r) => setTimeout(() => r('pending'), 2_000))])
      if (early === 'done') {
        await until(() => watcher.current()?.stage === 'write-shards', 5_000, 'the instance at write-shards')
        await store.update(b.id, { note: 'after-switch' })
        updated = true
      }
      at.continue()
      const move = await moving
      expect(move.outcome, move.reasons.join('; ')).toBe('done')
      await repairing
    } finally {
      await hooks.close()
    }
    await until(() => watcher.current()?.stage === 'write-shards', 5_000, 'the instance at write-shards')
    if (!updated) await store.update(b.id, { note: 'after-switch' })
    await store.flush()
    // The update acknowledged at write-shards holds in every copy.
    for (const side of ['user', 'merchant', 'legacy'] as const) expect(await noteIn(side, b.id, b.u, b.m), side).toMatchObject({ note: 'after-switch', version: 2 })
    // The repair either finished before the switch took effect, or stopped at it saying why.
    if (repairErr !== undefined) expect(repairErr).toMatchObject({ code: 'PRECONDITION_FAILED', message: expect.stringContaining('the stage changed during repair') })
    expect(await noteIn('merchant', a.id, a.u, a.m)).toMatchObject({ note: 'v1' })
  })
})
