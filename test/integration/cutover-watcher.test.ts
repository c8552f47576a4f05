import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { publishStage, readDurableStage, readLiveInstances, readStageState, writeDurableStage } from '../../src/cutover/switch-store.js'
import type { StageState } from '../../src/cutover/stages.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { setupFleet, until, type Fleet } from './cutover-support.js'

let fleet: Fleet
let proxy: TcpProxy

beforeAll(async () => {
  fleet = await setupFleet('cowatch')
  const u = new URL(fleet.config.redis.url)
  proxy = await startTcpProxy({ targetHost: u.hostname, targetPort: Number(u.port || 6379) })
})

afterAll(async () => {
  await proxy?.close()
  await fleet?.cleanup()
})

const state = (version: number, stage: StageState['stage'] = 'dual-write'): StageState => ({ stage, version, readPercent: 0, changedAt: new Date().toISOString() })

describe('StageWatcher', () => {
  it('starts at legacy v0 on a fleet that never moved, and reads the durable copy when Redis has none', async () => {
    const w = new StageWatcher(fleet.instance(), { instanceId: 'fresh' })
    await w.start()
    expect(w.current()).toMatchObject({ stage: 'legacy', version: 0 })
    expect(w.ready).toBe(true)
    await w.close()
    expect(w.ready).toBe(false)
  })

  it('two watchers both see a change within 100 ms and heartbeat the applied version', async () => {
    const a = new StageWatcher(fleet.instance(), { instanceId: 'a', pollMs: 5_000, heartbeatMs: 200 })
    const b = new StageWatcher(fleet.instance(), { instanceId: 'b', pollMs: 5_000, heartbeatMs: 200 })
    await Promise.all([a.start(), b.start()])
    try {
      const base = (await readStageState(fleet.rt)).version
      const seen = (w: StageWatcher) => new Promise<number>((resolve) => w.on('change', (s) => s.version === base + 1 && resolve(performance.now())))
      const pa = seen(a)
      const pb = seen(b)
      const t0 = performance.now()
      await publishStage(fleet.rt, state(base + 1))
      const [ta, tb] = await Promise.all([pa, pb])
      expect(ta - t0).toBeLessThan(100)
      expect(tb - t0).toBeLessThan(100)
      expect(a.current()!.version).toBe(base + 1)
      await until(async () => (await readLiveInstances(fleet.rt.redis(), fleet.config.redis.keyPrefix)).filter((i) => i.version === base + 1).length === 2, 1_000, 'both acknowledgements')
      // A change published with a lower version is never applied (no going back in time).
      await publishStage(fleet.rt, state(base, 'legacy'))
      await new Promise((r) => setTimeout(r, 50))
      expect(a.current()!.version).toBe(base + 1)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
    const live = await readLiveInstances(fleet.rt.redis(), fleet.config.redis.keyPrefix)
    expect(live.map((i) => i.instanceId)).not.toContain('a')
  })

  it('falls back to polling when a published change is missed', async () => {
    const w = new StageWatcher(fleet.instance(), { instanceId: 'poller', pollMs: 100 })
    await w.start()
    try {
      const v = w.current()!.version + 1
      // Set without publishing: only the poll can find it.
      await fleet.rt.redis().set(`${fleet.config.redis.keyPrefix}cutover:stage`, JSON.stringify(state(v)))
      await until(() => w.current()!.version === v, 1_000, 'the poll to apply the change')
    } finally {
      await w.close()
    }
  })

  it('keeps the last known stage and reports not ready while Redis is unreachable, then catches up', async () => {
    const inst = fleet.instance({ redisUrl: `redis://127.0.0.1:${proxy.port}` })
    const w = new StageWatcher(inst, { instanceId: 'cut', pollMs: 100, heartbeatMs: 100, redisTimeoutMs: 300 })
    await w.start()
    try {
      expect(w.ready).toBe(true)
      const known = w.current()!
      proxy.cut()
      await until(() => !w.ready, 1_000, 'not ready after the cut')
      await publishStage(fleet.rt, state(known.version + 1, 'shadow-read'))
      await new Promise((r) => setTimeout(r, 400))
      expect(w.ready).toBe(false)
      expect(w.current()).toEqual(known)
      proxy.restore()
      await until(() => w.ready && w.current()!.version === known.version + 1, 5_000, 'ready again at the new version')
    } finally {
      proxy.restore()
      await w.close()
      await inst.close()
    }
  })

  it('starts from the durable copy when Redis is unreachable, not ready', async () => {
    await writeDurableStage(fleet.rt, state(40, 'read-shards'), true, { version: (await readDurableStage(fleet.rt))?.state.version ?? null })
    proxy.cut()
    const inst = fleet.instance({ redisUrl: `redis://127.0.0.1:${proxy.port}` })
    const w = new StageWatcher(inst, { instanceId: 'cold', redisTimeoutMs: 200 })
    try {
      await w.start()
      expect(w.current()).toMatchObject({ stage: 'read-shards', version: 40 })
      expect(w.ready).toBe(false)
    } finally {
      proxy.restore()
      // QUIT on a Redis client still reconnecting never finishes: close once it is back.
      await until(() => w.ready, 10_000, 'reconnect').catch(() => undefined)
      await w.close()
      await inst.close()
    }
  })
})
