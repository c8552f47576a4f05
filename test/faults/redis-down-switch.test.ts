/**
 * Fault scenario: Redis (a test-owned redis-server, never the shared one)
 * killed while a write switch (read-shards 100% -> write-shards) holds its
 * fences, under write load. The switch cannot publish: it aborts and
 * restores the old stage in the durable copy and the fences. While Redis is
 * down no write commits (every instance is fenced out: writes are held and
 * retried, not lost); Redis comes back empty, the next move recovers the
 * durable stage, the one after completes the switch. Never two primaries,
 * no acknowledged order lost or duplicated. ~15 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { moveStage } from '../../src/cutover/steps.js'
import { readDurableStage } from '../../src/cutover/switch-store.js'
import { readFences } from '../../src/cutover/fence.js'
import type { StageState } from '../../src/cutover/stages.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import { passingReaders, until, walkTo } from '../integration/cutover-support.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'
import { startLoad } from './support/load.js'
import { startOwnRedis, type OwnRedis } from './support/redis-server.js'
import { assertOneOpenVersion, assertOrdersExactlyOnce, assertSinglePrimary, assertStageAgreement, primaryCommitRecorder, type OrderLedger } from './support/invariants.js'

let redis: OwnRedis
let fleet: FaultFleet
let watcher: StageWatcher
let store: DualWriteStore
const recorder = primaryCommitRecorder()
const ledger: OrderLedger = new Map()
const applied: StageState[] = []

beforeAll(async () => {
  redis = await startOwnRedis()
  fleet = await faultFleet('fredisdown', { redisUrl: redis.url })
  watcher = new StageWatcher(fleet.instance(), { instanceId: 'fault-redisdown', heartbeatMs: 200, pollMs: 200, redisTimeoutMs: 300 })
  watcher.on('change', (s) => applied.push(s))
  await watcher.start()
  store = new DualWriteStore({ runtime: fleet.rt, stage: watcher, onPrimaryWrite: recorder.hook, secondaryTimeoutMs: 1_000 })
  await walkTo(fleet.rt, 'read-shards', 100, { ackTimeoutMs: 10_000 })
  await until(() => watcher.current()?.readPercent === 100, 5_000, 'the watcher')
})

afterAll(async () => {
  await watcher?.close()
  await fleet?.cleanup()
  await redis?.kill()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('Redis killed while a write switch holds its fences', () => {
  it('aborts to the old stage; while Redis is down the instance follows the durable copy the fences name; recovers and completes after; one primary throughout', async () => {
    const load = startLoad(store, ledger, { workers: 2, pauseMs: 5 })
    try {
      await sleep(500)
      const from = watcher.current()!
      const hooks = HookServer.inProcess()
      let move
      try {
        const raised = hooks.waitFor('cutover.fences-raised')
        const moving = moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'fault-test', ackTimeoutMs: 10_000 })
        const held = await raised
        await redis.kill()
        held.continue()
        move = await moving
      } finally {
        await hooks.close()
      }
      expect(move.outcome, move.reasons.join('; ')).toBe('aborted')
      expect(move.to).toMatchObject({ stage: 'read-shards', readPercent: 100 })
      const restored = move.to!.version
      expect((await readDurableStage(fleet.rt))!.state).toMatchObject({ stage: 'read-shards', version: restored })
      for (const f of await readFences(fleet.rt)) expect(f).toMatchObject({ state: 'open', version: restored })
      await assertOneOpenVersion(fleet.rt)

      // Redis down: the fences are at the restored version, so writes planned at v(from) are refused;
      // the refusal names the fence's version, and the instance reads the durable copy: it follows the
      // restored stage without Redis (still not ready), and writes resume on its primary, legacy.
      const commitsBefore = recorder.commits.length
      const refusalsBefore = load.stats.refusals
      expect(from.version).toBeLessThan(restored)
      await until(() => watcher.current()!.version === restored, 5_000, 'the instance to learn the restored stage from the durable copy')
      expect(watcher.ready).toBe(false)
      expect(load.stats.refusals).toBeGreaterThan(refusalsBefore)
      await until(() => recorder.commits.length > commitsBefore, 5_000, 'writes to resume at the restored stage while Redis is down')

      // Redis comes back empty. The next move puts the durable stage back; the one after switches.
      await redis.start()
      const recovered = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'fault-test', ackTimeoutMs: 10_000 })
      expect(recovered.outcome, recovered.reasons.join('; ')).toBe('recovered')
      expect(recovered.reasons[0]).toContain('Redis holds no stage')
      await until(() => watcher.current()?.version === recovered.to!.version, 5_000, 'the instance to follow the recovery')
      await until(() => recorder.commits.length > commitsBefore + 5, 5_000, 'writes to resume')
      // Copies refused by the raised fences stayed journaled (the aborted switch never drained): drain, as the service's drainer would.
      expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, unreachable: [] })
      const done = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'fault-test', ackTimeoutMs: 10_000 })
      expect(done.outcome, done.reasons.join('; ')).toBe('done')
      expect(done.to!.stage).toBe('write-shards')
      await until(() => watcher.current()?.version === done.to!.version, 5_000, 'the instance to follow')
      await sleep(500)
    } finally {
      const stats = await load.stop()
      expect(stats.inserts).toBeGreaterThan(20)
    }
    await store.flush()
    expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, remaining: 0, unreachable: [] })
    await assertStageAgreement(fleet.rt, [watcher])
    await assertOrdersExactlyOnce(fleet.rt, ledger, { legacy: true })
    await assertSinglePrimary(fleet.rt, recorder.commits, applied)
    expect(new Set(recorder.commits.map((c) => c.side))).toEqual(new Set(['legacy', 'user']))
  })
})
