/**
 * Regression, issue 15 defect 1: a stalled secondary copy resurrected a
 * deleted order. Another session's locking read holds gap locks on a shard
 * table; `insert(O)`'s copy there waits; the client's bound fires and it
 * destroyed its connection, but the server went on waiting and the INSERT
 * landed after the delete and the drain had cleared the journal: O lived
 * again in that shard at v1, with nothing left to remove it. Now the copy
 * carries a server-side deadline and run bound, the client kills it at its
 * bound, and every delete leaves a tombstone a late copy cannot pass.
 * Once for the merchant shard, once for the user shard (the future primary).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PoolConnection } from 'mysql2/promise'
import type { StageWatcher } from '../../src/cutover/watcher.js'
import type { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal, readJournalDepth } from '../../src/dualwrite/journal.js'
import { shardLocation } from '../../src/dualwrite/placement.js'
import { qualified } from '../../src/runtime/mysql.js'
import { newOrderId, orderRow } from '../integration/dualwrite-support.js'
import { faultFleet, instanceAtDualWrite, type FaultFleet } from './support/fleet.js'
import { sidesHolding } from './support/invariants.js'

let fleet: FaultFleet
let watcher: StageWatcher
let store: DualWriteStore

beforeAll(async () => {
  fleet = await faultFleet('fstallcopy')
  ;({ watcher, store } = await instanceAtDualWrite(fleet, 'fault-stallcopy', 600))
})

afterAll(async () => {
  await watcher?.close()
  await fleet?.cleanup()
})

/** Holds next-key locks over the whole shard table (a long locking read) until released. */
async function lockShardTable(side: 'user' | 'merchant', key: string): Promise<{ release(): Promise<void> }> {
  const l = shardLocation(fleet.config, side, key)
  const conn: PoolConnection = await fleet.rt.host(l.host).getConnection()
  await conn.beginTransaction()
  await conn.query(`SELECT order_id FROM ${qualified(l.database, l.table)} WHERE order_id > 0 FOR UPDATE`)
  return {
    async release() {
      await conn.commit()
      conn.release()
    },
  }
}

describe.each(['merchant', 'user'] as const)('defect 1: a copy stalled behind a %s-shard lock does not resurrect a deleted order', (side) => {
  it('insert (copy stalls), delete, drain, lock released: the order is nowhere and stays nowhere', async () => {
    const userId = side === 'user' ? '61001' : '61002'
    const merchantId = side === 'user' ? '6101' : '6102'
    const id = newOrderId(userId)
    const lock = await lockShardTable(side, side === 'user' ? userId : merchantId)
    let released = false
    try {
      const failuresBefore = store.stats().secondaryFailures
      await store.insert(orderRow(id, userId, merchantId))
      expect(store.stats().secondaryFailures).toBe(failuresBefore + 1)
      await store.delete(id)
      await store.flush()
      const drained = await drainJournal(fleet.rt)
      expect(drained).toMatchObject({ failed: 0, remaining: 0 })
      expect(drained.replayed).toBeGreaterThanOrEqual(1)
      await lock.release()
      released = true
      // Give a statement the server kept running every chance to land (its own bound is below 1 s).
      await new Promise((r) => setTimeout(r, 1_500))
      expect(await sidesHolding(fleet.rt, id, { userId, merchantId })).toEqual([])
      expect((await readJournalDepth(fleet.rt)).total).toBe(0)
    } finally {
      if (!released) await lock.release()
    }
  })
})
