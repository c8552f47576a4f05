/**
 * Regression (issue 7, found by this harness): an instance cut off from
 * Redis stalls between its primary commit and its secondary copies across a
 * whole write switch; the switch drains the journal (clearing that write's
 * row), the order is then deleted under the new stage, and the stalled
 * instance resumes. Its unfenced merchant copy used to put the deleted order
 * back in the merchant shard for good (deletes leave no tombstone and the
 * journal row was gone). Now a write copies only while it holds its own
 * journal row (src/dualwrite/replicate.ts): the row is gone, so it copies
 * nothing. The first test runs the sequence and asserts each step; the
 * second, the invariant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { moveStage } from '../../src/cutover/steps.js'
import { readLiveInstances } from '../../src/cutover/switch-store.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import { newOrderId, orderRow } from '../integration/dualwrite-support.js'
import { passingReaders, until, walkTo } from '../integration/cutover-support.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { testRedisUrl } from '../support/db.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'
import { assertOrdersExactlyOnce, sidesHolding, type OrderLedger } from './support/invariants.js'

let fleet: FaultFleet
let proxy: TcpProxy
let watcherA: StageWatcher
let watcherB: StageWatcher
let storeA: DualWriteStore
let storeB: DualWriteStore
const ledger: OrderLedger = new Map()
const userId = '71001'
const merchantId = '7302'
let orderId = ''
/** Where the deleted order was found after the sequence (filled by the first test). */
let foundAfter: string[] | undefined

beforeAll(async () => {
  fleet = await faultFleet('fresurrect')
  proxy = await startTcpProxy({ targetPort: Number(new URL(testRedisUrl()).port || 6379) })
  const a = fleet.instance({ redisUrl: `redis://127.0.0.1:${proxy.port}` })
  watcherA = new StageWatcher(a, { instanceId: 'instance-a', heartbeatMs: 100, heartbeatTtlMs: 400, pollMs: 100, redisTimeoutMs: 200 })
  watcherB = new StageWatcher(fleet.instance(), { instanceId: 'instance-b', heartbeatMs: 100, pollMs: 100 })
  await watcherA.start()
  await watcherB.start()
  storeA = new DualWriteStore({ runtime: a, stage: watcherA, secondaryTimeoutMs: 1_000 })
  storeB = new DualWriteStore({ runtime: fleet.rt, stage: watcherB, secondaryTimeoutMs: 1_000 })
  await walkTo(fleet.rt, 'read-shards', 100, { ackTimeoutMs: 10_000 })
  await until(() => watcherA.current()?.readPercent === 100 && watcherB.current()?.readPercent === 100, 5_000, 'both instances at read-shards 100%')
})

afterAll(async () => {
  proxy?.restore()
  await watcherA?.close()
  await watcherB?.close()
  // Runtimes first: a Redis client reconnecting through the proxy would keep its server.close() waiting.
  await fleet?.cleanup()
  await proxy?.close()
})

const whereIs = (id: string) => sidesHolding(fleet.rt, id, { userId, merchantId })

describe('a merchant copy stalled across a write switch by an instance cut off from Redis, then a delete', () => {
  it('the sequence: commit on legacy, stall, switch (drained), delete acknowledged, stale copy resumes', async () => {
    const hooks = HookServer.inProcess()
    try {
      orderId = newOrderId(userId)
      const stall = hooks.waitFor('dualwrite.primary-committed', { where: (d) => d.orderId === orderId })
      const insert = storeA.insert(orderRow(orderId, userId, merchantId))
      const held = await stall
      expect(held.details.primary).toBe('legacy')

      // A loses Redis: it keeps read-shards (v) and drops out of the live set.
      proxy.cut()
      await until(async () => !(await readLiveInstances(fleet.rt.redis(), fleet.config.redis.keyPrefix)).some((i) => i.instanceId === 'instance-a'), 5_000, 'instance-a to drop out')
      const versionA = watcherA.current()!.version

      // The write switch: fences, publish, acks (B only), drain inside the fence (copies the order, clears A's journal row), record, open.
      const move = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'fault-test', ackTimeoutMs: 10_000 })
      expect(move.outcome, move.reasons.join('; ')).toBe('done')
      expect(move.to!.stage).toBe('write-shards')
      expect(await whereIs(orderId)).toEqual(['legacy', 'user', 'merchant'])
      await until(() => watcherB.current()?.version === move.to!.version, 5_000, 'instance-b to follow')
      expect(watcherA.current()!.version).toBe(versionA)

      // B deletes it under write-shards (primary: the user shard): gone everywhere, acknowledged.
      await storeB.delete(orderId)
      ledger.set(orderId, { userId, merchantId, state: 'deleted' })
      expect(await whereIs(orderId)).toEqual([])

      // A resumes its copies from the image it committed at read-shards.
      held.continue()
      await insert // the client of A sees its insert acknowledged
      await storeA.flush()
      proxy.restore()
      await until(() => watcherA.current()?.version === move.to!.version, 10_000, 'instance-a to catch up')
      // The documented recovery: drain (and a drain after A caught up).
      expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, remaining: 0 })
      await storeA.flush()
      expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, remaining: 0 })
      foundAfter = await whereIs(orderId)
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
