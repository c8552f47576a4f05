/**
 * Regression (cutover-kill, 2026-11-25): an acknowledged order was missing
 * from the user dimension after the final drain. A switch reopens its fences
 * one primary after another; a write committed on legacy (already open at the
 * new version) copied into a user shard whose fence was still committed
 * `raised` at that same version. The fenced copy applied nothing, a fence read
 * just after found it open at the write's version, the copy was called done
 * and the journal row cleared: the user copy never came. A copy that applied
 * nothing is judged by the target row; and copies carry no fence any more
 * (their own guards make it redundant), so a raised fence cannot stop them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal, readJournalDepth } from '../../src/dualwrite/journal.js'
import { primaryDatabases, shardLocation } from '../../src/dualwrite/placement.js'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { FixedStage, hostPools, provisionedFleet, newOrderId, orderRow, physicalRow } from './dualwrite-support.js'

let fleet: Awaited<ReturnType<typeof provisionedFleet>>
let config: ShardkitConfig
let pools: ReturnType<typeof hostPools>
let rt: Runtime
let stage: FixedStage
let store: DualWriteStore

beforeAll(async () => {
  fleet = await provisionedFleet('dwreopen')
  ;({ config, rt, pools } = fleet)
  stage = new FixedStage(config, pools.get)
  await stage.set('dual-write')
  store = new DualWriteStore({ runtime: rt, stage, secondaryTimeoutMs: 1_000 })
})
afterAll(async () => {
  await fleet?.cleanup()
})

/** Sets the committed state of every user-dimension primary's fence row, at the current version. */
async function userFences(state: 'open' | 'raised'): Promise<void> {
  for (const p of primaryDatabases(config).filter((x) => x.side === 'user')) {
    await pools.get(p.host).query(`UPDATE ${qualified(p.database, 'shardkit_fence')} SET state = ?, stage_version = ? WHERE id = 1`, [state, stage.state.version])
  }
}

describe('a write that copies into a user shard whose fence is raised or not reopened yet', () => {
  it('copies no longer wait on (or are refused by) a raised fence: the order reaches the user shard at once', async () => {
    // Since tombstones and version guards sit in every copy statement (src/dualwrite/copy-sql.ts),
    // a copy into a side that may become the primary needs no fence: it can only write what that
    // side lacks or already holds. So a raised fence no longer leaves copies for the drain.
    const userId = '3001'
    const id = newOrderId(userId)
    await userFences('raised')
    try {
      await store.insert(orderRow(id, userId, '701'))
      await store.flush()
      const user = shardLocation(config, 'user', userId)
      expect(await physicalRow(pools.get(user.host), user, id)).toBeDefined()
      expect((await readJournalDepth(rt)).total).toBe(0)
    } finally {
      await userFences('open')
    }
  })

  it('with the user fences reopening while writes copy (raised, open, raised, ... at one version), no order is left without its user copy', async () => {
    // The race itself: the copy runs while the fence is raised and the fence read after it finds it
    // open. Before the fix some orders lost their user copy here (no copy, no journal row).
    let toggling = true
    const toggler = (async () => {
      for (let i = 0; toggling; i++) await userFences(i % 2 === 0 ? 'raised' : 'open')
    })()
    const ids: { id: string; userId: string }[] = []
    try {
      await Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (let i = 0; i < 60; i++) {
            const userId = String(4000 + w * 100 + i)
            const id = newOrderId(userId)
            await store.insert(orderRow(id, userId, '702'))
            ids.push({ id, userId })
          }
        }),
      )
      await store.flush()
    } finally {
      toggling = false
      await toggler
      await userFences('open')
    }
    expect(await drainJournal(rt)).toMatchObject({ failed: 0, remaining: 0 })
    const missing: string[] = []
    for (const { id, userId } of ids) {
      const user = shardLocation(config, 'user', userId)
      if (!(await physicalRow(pools.get(user.host), user, id))) missing.push(id)
    }
    expect(missing).toEqual([])
  })
})
