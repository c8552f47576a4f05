/**
 * Regression (issue 7, the same mechanism as merchant-resurrection, without
 * any stage switch): `shardctl dualwrite drain` (minAgeMs 0) replays and
 * clears the journal row of a write whose own copies are still in flight;
 * the order is then deleted; the stalled write resumes and used to copy its
 * stale image into the user AND merchant shards, unable to reach its primary
 * for the re-read that would have repaired it. Now every copy checks the
 * delete's tombstone in its own statement (src/dualwrite/copy-sql.ts), so the
 * stale image changes nothing, primary or not. First test: the
 * sequence, each step asserted; second: the invariant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import { newOrderId, orderRow } from '../integration/dualwrite-support.js'
import { until, walkTo } from '../integration/cutover-support.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { testMysqlUrl } from '../support/db.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'
import { assertOrdersExactlyOnce, sidesHolding, type OrderLedger } from './support/invariants.js'

let fleet: FaultFleet
let proxy: TcpProxy
let watcher: StageWatcher
let storeA: DualWriteStore
let storeB: DualWriteStore
const ledger: OrderLedger = new Map()
const userId = '73001'
const merchantId = '7501'
let foundAfter: string[] | undefined

beforeAll(async () => {
  fleet = await faultFleet('fdrainrace')
  const mysql = new URL(testMysqlUrl())
  proxy = await startTcpProxy({ targetHost: mysql.hostname, targetPort: Number(mysql.port || 3306) })
  const proxied = new URL(testMysqlUrl())
  proxied.hostname = '127.0.0.1'
  proxied.port = String(proxy.port)
  // Instance A reaches legacy (its primary at dual-write) through the proxy; everything else directly.
  const a = fleet.instance({ legacyUrl: proxied.toString() })
  watcher = new StageWatcher(fleet.instance(), { instanceId: 'fault-drainrace', heartbeatMs: 200, pollMs: 200 })
  await watcher.start()
  storeA = new DualWriteStore({ runtime: a, stage: watcher, secondaryTimeoutMs: 1_000 })
  storeB = new DualWriteStore({ runtime: fleet.rt, stage: watcher, secondaryTimeoutMs: 1_000 })
  await walkTo(fleet.rt, 'dual-write', 100, { ackTimeoutMs: 10_000 })
  await until(() => watcher.current()?.stage === 'dual-write', 5_000, 'the watcher')
})

afterAll(async () => {
  proxy?.restore()
  await watcher?.close()
  await fleet?.cleanup()
  await proxy?.close()
})

const whereIs = (id: string) => sidesHolding(fleet.rt, id, { userId, merchantId })

describe('a drain that replays a write still in flight, then a delete, then the stalled write loses its primary', () => {
  it('drained, deleted, the stale write resumes and its primary is cut', async () => {
    const hooks = HookServer.inProcess()
    try {
      const id = newOrderId(userId)
      const stall = hooks.waitFor('dualwrite.primary-committed', { where: (d) => d.orderId === id && d.op === 'insert' })
      const insert = storeA.insert(orderRow(id, userId, merchantId))
      const held = await stall
      // `shardctl dualwrite drain` (minAgeMs 0) takes the fresh row: copies the order, clears the row.
      expect(await drainJournal(fleet.rt)).toMatchObject({ replayed: 1, failed: 0, remaining: 0 })
      expect(await whereIs(id)).toEqual(['legacy', 'user', 'merchant'])
      await storeB.delete(id)
      ledger.set(id, { userId, merchantId, state: 'deleted' })
      expect(await whereIs(id)).toEqual([])
      // A's primary becomes unreachable (or A dies) right after its copies.
      proxy.cut()
      held.continue()
      await insert // acknowledged
      // Its stale copies need no primary any more: the delete's tombstones stop them, and they count as superseded.
      expect(storeA.stats().secondaryFailures).toBe(0)
      await storeA.flush()
      proxy.restore()
      expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, remaining: 0 })
      foundAfter = await whereIs(id)
    } finally {
      await hooks.close()
    }
  })

  it('the deleted order exists nowhere afterwards', async () => {
    expect(foundAfter, 'the first test did not run to its end').toBeDefined()
    expect(foundAfter).toEqual([])
    await assertOrdersExactlyOnce(fleet.rt, ledger, { legacy: true })
  })
})
