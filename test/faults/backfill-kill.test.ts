/**
 * Fault scenario: `shardctl backfill` (the real CLI) at dual-write, while a
 * service instance writes through the store: killed with SIGKILL right
 * after a chunk committed (before its checkpoint), then stopped with SIGTERM
 * right after a checkpoint (it stops there, gracefully), then resumed to the
 * end. `shardctl verify` is clean afterwards; every legacy row is exactly
 * once in each dimension (rechecked by the shared invariants), every
 * acknowledged order of the live load too. ~20 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StageWatcher } from '../../src/cutover/watcher.js'
import type { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, instanceAtDualWrite, type FaultFleet } from './support/fleet.js'
import { runShardctl, spawnShardctl } from './support/shardctl.js'
import { startLoad } from './support/load.js'
import { assertOrdersExactlyOnce, type OrderLedger } from './support/invariants.js'

const ROWS = 3_000
let fleet: FaultFleet
let hooks: HookServer
let watcher: StageWatcher
let store: DualWriteStore
const ledger: OrderLedger = new Map()

beforeAll(async () => {
  fleet = await faultFleet('fbfkill')
  await generateOrders(fleet.rt.legacy(), { database: fleet.config.legacy.database, table: fleet.config.legacy.table, rows: ROWS, seed: 11 })
  hooks = await HookServer.listen()
  ;({ watcher, store } = await instanceAtDualWrite(fleet, 'fault-backfill'))
})

afterAll(async () => {
  await hooks?.close()
  await watcher?.close()
  await fleet?.cleanup()
})

const backfill = ['backfill', '--chunk-size', '200', '--json'] as const

describe('`shardctl backfill` killed at its hooks, then resumed', () => {
  it('resumes from the checkpoint to a complete, verified copy; nothing lost or duplicated', async () => {
    const load = startLoad(store, ledger, { workers: 2, pauseMs: 10 })
    try {
      // SIGKILL after the 3rd chunk committed, before its checkpoint: that chunk is copied again (idempotent).
      let n = 0
      const first = spawnShardctl(fleet.configPath, backfill, { hooks: hooks.path! })
      const committed = await hooks.waitFor('backfill.chunk-committed', { where: () => ++n === 3 })
      process.kill(committed.pid, 'SIGKILL')
      expect((await first.done).signal).toBe('SIGKILL')

      // SIGTERM right after a checkpoint: the backfill stops there by itself.
      let m = 0
      const second = spawnShardctl(fleet.configPath, backfill, { hooks: hooks.path! })
      const saved = await hooks.waitFor('backfill.checkpoint-saved', { where: () => ++m === 2 })
      process.kill(saved.pid, 'SIGTERM')
      saved.continue()
      const stopped = await second.done
      expect(stopped.signal, stopped.stderr).toBeNull()
      expect(stopped.code, stopped.stderr).not.toBe(0)

      const last = await runShardctl(fleet.configPath, backfill)
      expect(last.code, last.stderr).toBe(0)
      // It resumed from the SIGTERM run's checkpoint, not from the start.
      expect(last.json, last.stdout).toMatchObject({ completed: true })
      expect(last.json.resumedFrom, last.stdout).not.toBeNull()
    } finally {
      await load.stop()
    }
    await store.flush()
    expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, remaining: 0 })
    const verify = await runShardctl(fleet.configPath, ['verify', '--json'])
    expect(verify.code, verify.stderr + verify.stdout).toBe(0)
    const { present, adopted } = await assertOrdersExactlyOnce(fleet.rt, ledger, { legacy: true, adoptLegacyRows: true })
    expect(adopted).toBeGreaterThanOrEqual(ROWS - ledger.size)
    expect(present).toBeGreaterThan(ROWS - 500)
    console.info(`[faults] backfill-kill: ${ROWS} legacy rows, killed at chunk 3 (SIGKILL) and checkpoint 2 (SIGTERM), ${present} orders verified; last run ${JSON.stringify(last_summary(verify.json))}`)
  })
})

function last_summary(v: unknown): unknown {
  const o = v as { clean?: boolean; differences?: number } | undefined
  return { clean: o?.clean, differences: o?.differences }
}
