/**
 * Regressions, issue 15 defects 4, 6 and 7: what an emptied Redis (it keeps
 * nothing on disk here) did to the stage.
 *
 * 4. Split brain: the run lock lived only in Redis. With Redis emptied during
 *    a move, a second `cutover advance` took the lock, and recovery restored
 *    the durable copy it had read at max+1 while the first move completed at
 *    the same version: two primaries at one version. Now the lock is in the
 *    control database and the durable copy is compare-and-set.
 * 6. After Redis restarted empty, a new instance ran at `legacy v0` and
 *    reported ready (the watcher fell back to the durable copy only when
 *    Redis errored, not when the key was missing): its reads missed orders and
 *    its inserts were refused.
 * 7. (found by reading; shown here first) A switch counted zero live
 *    instances as "all acknowledged". With Redis emptied after the publish,
 *    the switch completed, and an instance that missed the message never
 *    learned the new version: it stayed fenced out while reporting ready.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { moveStage } from '../../src/cutover/steps.js'
import { readDurableStage, readStageState } from '../../src/cutover/switch-store.js'
import { isShardkitError } from '../../src/errors.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { deleteRedisKeys, passingReaders, until, walkTo } from '../integration/cutover-support.js'
import { newOrderId, orderRow } from '../integration/dualwrite-support.js'
import { HookServer } from './support/hook-server.js'
import { startTcpProxy } from '../support/tcp-proxy.js'
import { testRedisUrl } from '../support/db.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'
import { assertOneOpenVersion, assertStageAgreement } from './support/invariants.js'

let fleet: FaultFleet
const watchers: StageWatcher[] = []

beforeAll(async () => {
  fleet = await faultFleet('fredisempty')
})

afterAll(async () => {
  for (const w of watchers) await w.close()
  await fleet?.cleanup()
})

async function startWatcher(id: string): Promise<StageWatcher> {
  const w = new StageWatcher(fleet.instance(), { instanceId: id, heartbeatMs: 100, pollMs: 100 })
  watchers.push(w)
  await w.start()
  return w
}

describe('Redis emptied: the stage survives in the control database', () => {
  it('defect 6: an instance started after Redis restarted empty follows the durable stage, not legacy v0', async () => {
    await walkTo(fleet.rt, 'dual-write', 100, { ackTimeoutMs: 10_000 })
    const durable = (await readDurableStage(fleet.rt))!.state
    await deleteRedisKeys(fleet.config.redis.keyPrefix) // Redis restarted empty
    const w = await startWatcher('cold-start')
    expect(w.current()).toMatchObject({ stage: durable.stage, version: durable.version })
    // Its writes go where the stage says, and are accepted by the fence.
    const store = new DualWriteStore({ runtime: fleet.rt, stage: w })
    await store.insert(orderRow(newOrderId('64001'), '64001', '6401'))
    // The next move puts the durable stage back into Redis first.
    const r = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'after-restart' })
    expect(r.outcome).toBe('recovered')
    expect(r.reasons[0]).toContain('Redis holds no stage')
    await until(async () => w.current()?.version === (await readStageState(fleet.rt)).version, 5_000, 'the instance to follow the recovery')
  })

  it('defect 4: a second move while one runs is refused even after Redis lost its data; one version, one primary', async () => {
    const hooks = HookServer.inProcess()
    try {
      const held = hooks.waitFor('cutover.published')
      const first = moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'first', fenceBudgetMs: 30_000, ackTimeoutMs: 30_000 })
      const at = await held
      await deleteRedisKeys(fleet.config.redis.keyPrefix)
      const second = await moveStage(fleet.instance(), { kind: 'advance', readers: passingReaders(), actor: 'second', fenceBudgetMs: 5_000, ackTimeoutMs: 5_000 }).then(
        (r) => r.outcome,
        (err: unknown) => (isShardkitError(err, 'ALREADY_RUNNING') ? 'ALREADY_RUNNING' : `error ${(err as Error).message}`),
      )
      at.continue()
      const r = await first
      expect(second).toBe('ALREADY_RUNNING')
      // The first move saw Redis lose what it published: it aborted (the old stage back) or completed; never both.
      expect(['done', 'aborted']).toContain(r.outcome)
    } finally {
      await hooks.close()
    }
    // The next move recovers if needed; then the stores agree and one version is open.
    for (let i = 0; i < 3; i++) {
      const r = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'after' })
      if (r.outcome === 'done') break
    }
    await assertOneOpenVersion(fleet.rt)
    await assertStageAgreement(fleet.rt)
  })

  it('defect 7: an instance missed the change and Redis lost its data: the switch does not count zero instances as acknowledged, and the instance ends at the durable version', async () => {
    // The instance reaches Redis through a proxy, so it can miss the publish as an instance with a broken
    // connection does; its heartbeat is the default 1 s, so an emptied Redis shows no live instance for a while.
    const redis = new URL(testRedisUrl())
    const proxy = await startTcpProxy({ targetHost: redis.hostname, targetPort: Number(redis.port || 6379) })
    try {
      const w = new StageWatcher(fleet.instance({ redisUrl: `redis://127.0.0.1:${proxy.port}` }), { instanceId: 'missed-message', pollMs: 100, redisTimeoutMs: 300 })
      watchers.push(w)
      await w.start()
      await until(async () => w.current()?.version === (await readStageState(fleet.rt)).version, 5_000, 'the instance to follow')
      const before = w.current()!.version
      const hooks = HookServer.inProcess()
      let r
      try {
        const raised = hooks.waitFor('cutover.fences-raised')
        const published = hooks.waitFor('cutover.published')
        const moving = moveStage(fleet.instance(), { kind: 'rollback', readers: passingReaders(), actor: 'flush-after-publish', attempts: 1 })
        const atRaise = await raised
        proxy.cut() // the instance misses the publish
        atRaise.continue()
        const atPublish = await published
        await deleteRedisKeys(fleet.config.redis.keyPrefix) // and Redis loses everything
        proxy.restore()
        atPublish.continue()
        r = await moving
      } finally {
        await hooks.close()
      }
      expect(w.current()!.version === before || r.outcome !== 'done', 'the instance cannot have applied the missed version yet unless the move aborted').toBe(true)
      expect(r.outcome, r.reasons.join('; ')).toBe('aborted')
      expect(r.reasons.join(' ')).toContain('Redis no longer holds the published stage')
      // Whatever the stores say now, the instance learns it: from Redis, else the durable copy.
      const durable = (await readDurableStage(fleet.rt))!.state
      await until(() => w.current()?.version === durable.version, 5_000, `the instance to reach the durable version ${durable.version}`)
      // And a move from here completes, with the instance following.
      const s0 = (await readDurableStage(fleet.rt))!.state
      const done = await moveStage(fleet.instance(), { kind: 'advance', ...(s0.stage === 'read-shards' && s0.readPercent < 100 ? { percent: 100 } : {}), readers: passingReaders(), actor: 'after-flush' })
      expect(['done', 'recovered'], done.reasons.join('; ')).toContain(done.outcome)
      const now = (await readDurableStage(fleet.rt))!.state
      await until(() => w.current()?.version === now.version, 5_000, 'the instance to follow the next move')
    } finally {
      proxy.restore()
      await proxy.close()
    }
  })
})
