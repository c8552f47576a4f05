/**
 * Regression (issue 7, found by this harness): a `cutover advance` killed
 * right after its commit point (the durable copy says write-shards) used to
 * leave the fences ROLLED BACK to the old version: they were raised by open
 * transactions that died with the process, so an instance that missed the
 * switch (cut off from Redis, not waited for) still committed on legacy
 * under a durable write-shards, and the recovery restored write-shards
 * without draining what it journaled.
 *
 * Now the fences are committed raised at the new version right before the
 * commit point, so after the kill every write is refused until the rerun
 * recovers (which drains the journal inside the fence first).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { cutoverKeys, expireRunLock, readDurableStage, readLiveInstances, readRunLock } from '../../src/cutover/switch-store.js'
import { readFences } from '../../src/cutover/fence.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { newOrderId, orderRow } from '../integration/dualwrite-support.js'
import { until, walkTo } from '../integration/cutover-support.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { testRedisUrl } from '../support/db.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'
import { runShardctl, spawnShardctl } from './support/shardctl.js'

let fleet: FaultFleet
let proxy: TcpProxy
let hooks: HookServer
let watcherA: StageWatcher
let storeA: DualWriteStore
/** What happened to instance A's write after the kill (filled by the first test). */
let outcome: { committed: boolean; code?: string; durableStage?: string } | undefined

beforeAll(async () => {
  fleet = await faultFleet('fcommitwin')
  hooks = await HookServer.listen()
  proxy = await startTcpProxy({ targetPort: Number(new URL(testRedisUrl()).port || 6379) })
  const a = fleet.instance({ redisUrl: `redis://127.0.0.1:${proxy.port}` })
  watcherA = new StageWatcher(a, { instanceId: 'instance-a', heartbeatMs: 100, heartbeatTtlMs: 400, pollMs: 100, redisTimeoutMs: 200 })
  await watcherA.start()
  storeA = new DualWriteStore({ runtime: a, stage: watcherA, secondaryTimeoutMs: 1_000 })
  await walkTo(fleet.rt, 'read-shards', 100, { ackTimeoutMs: 10_000 })
  await until(() => watcherA.current()?.readPercent === 100, 5_000, 'instance-a at read-shards 100%')
})

afterAll(async () => {
  proxy?.restore()
  await hooks?.close()
  await watcherA?.close()
  // Runtimes first: a Redis client reconnecting through the proxy would keep its server.close() waiting.
  await fleet?.cleanup()
  await proxy?.close()
})

describe('a move killed right after its commit point', () => {
  it('after the kill the fences stay raised at the new version; the rerun recovers write-shards', async () => {
    proxy.cut()
    await until(async () => !(await readLiveInstances(fleet.rt.redis(), fleet.config.redis.keyPrefix)).some((i) => i.instanceId === 'instance-a'), 5_000, 'instance-a to drop out')
    const old = watcherA.current()!
    const run = spawnShardctl(fleet.configPath, ['cutover', 'advance', '--force', '--reason', 'fault scenario', '--ack-timeout-ms', '10000', '--json', '--yes'], { hooks: hooks.path! })
    const at = await hooks.waitFor('cutover.recorded')
    process.kill(at.pid, 'SIGKILL')
    expect((await run.done).signal).toBe('SIGKILL')
    const durable = (await readDurableStage(fleet.rt))!.state
    expect(durable).toMatchObject({ stage: 'write-shards', version: old.version + 1 })
    for (const f of await readFences(fleet.rt)) expect(f).toMatchObject({ state: 'raised', version: old.version + 1 })

    const userId = '72001'
    const id = newOrderId(userId)
    try {
      await storeA.insert(orderRow(id, userId, '7401'))
      outcome = { committed: true, durableStage: durable.stage }
    } catch (err) {
      outcome = { committed: false, code: (err as { code?: string }).code }
    }

    // The rerun recovers write-shards (fences reopened at a new version).
    await expireRunLock(fleet.rt)
    await until(async () => (await readRunLock(fleet.rt)) === undefined, 2_000, 'lock expiry')
    const rerun = await runShardctl(fleet.configPath, ['cutover', 'advance', '--force', '--reason', 'fault scenario', '--ack-timeout-ms', '10000', '--json', '--yes'])
    expect(rerun.json?.outcome, rerun.stderr).toBe('recovered')
    expect(rerun.json.to).toMatchObject({ stage: 'write-shards' })
    // A gets Redis back and follows the recovered stage.
    proxy.restore()
    await until(() => watcherA.ready && watcherA.current()?.version === rerun.json.to.version, 10_000, 'instance-a to follow')
  })

  it('a write planned at the old stage is refused once the durable copy names the new one', () => {
    expect(outcome).toMatchObject({ committed: false, code: 'FENCE_REJECTED' })
  })
})
