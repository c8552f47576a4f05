import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { moveStage } from '../../src/cutover/steps.js'
import { checkFence, openFencesAt, raiseFences, readFences } from '../../src/cutover/fence.js'
import { readDurableStage, readHistory, readStageState, writeHeartbeat, removeHeartbeat } from '../../src/cutover/switch-store.js'
import { isShardkitError } from '../../src/errors.js'
import { insertJournalEntry, readJournalDepth } from '../../src/dualwrite/journal.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { fencedInsert, passingReaders, rowsBySide, setupFleet, startWriter, until, walkTo, type Fleet } from './cutover-support.js'

let fleet: Fleet
let proxy: TcpProxy
let watcher: StageWatcher

beforeAll(async () => {
  fleet = await setupFleet('cofence')
  const u = new URL(fleet.config.redis.url)
  proxy = await startTcpProxy({ targetHost: u.hostname, targetPort: Number(u.port || 6379) })
  watcher = new StageWatcher(fleet.instance(), { instanceId: 'writer-a', pollMs: 200, heartbeatMs: 100 })
  await watcher.start()
})

afterAll(async () => {
  await watcher?.close()
  await proxy?.close()
  await fleet?.cleanup()
})

describe('the write fence through the write-primary switch', () => {
  it('an instance that stops acknowledging blocks the switch: it aborts and everything returns to where it was', async () => {
    const before = await walkTo(fleet.rt, 'read-shards', 100)
    const stuck = 'stuck-instance'
    // Alive (heartbeating) but never applying a new version.
    await writeHeartbeat(fleet.rt.redis(), fleet.config.redis.keyPrefix, stuck, before, 30_000)
    try {
      const r = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'test', ackTimeoutMs: 300 })
      expect(r.outcome).toBe('aborted')
      expect(r.reasons[0]).toContain(`${stuck} at ${before.version}`)
      expect(r.to).toMatchObject({ stage: 'read-shards', readPercent: 100, version: before.version + 2 })
      const now = await readStageState(fleet.rt)
      expect(now).toMatchObject({ stage: 'read-shards', readPercent: 100, version: before.version + 2 })
      expect((await readDurableStage(fleet.rt))!.state).toMatchObject({ stage: 'read-shards', version: before.version + 2 })
      for (const f of await readFences(fleet.rt)) expect(f).toMatchObject({ state: 'open', version: before.version + 2 })
      await until(() => watcher.current()!.version === before.version + 2, 1_000, 'the writer to follow the restore')
      // Writes go on at the restored stage, on legacy.
      const w = await fencedInsert(fleet.rt, watcher.current()!, '900001', '5')
      expect(w.side).toBe('legacy')
      const h = await readHistory(fleet.rt, { limit: 1 })
      expect(h[0]).toMatchObject({ outcome: 'aborted', to: { stage: 'read-shards', version: before.version + 2 } })
      expect(h[0]!.fenceMs).toBeGreaterThan(0)
    } finally {
      await removeHeartbeat(fleet.rt.redis(), fleet.config.redis.keyPrefix, stuck)
    }
  })

  it('a concurrent writer through the flip: no lost write, none on the old primary after the flip; a cut-off instance is refused by the database', async () => {
    const before = await walkTo(fleet.rt, 'read-shards', 100)
    // A second instance whose Redis goes through a proxy we cut: it never hears the switch.
    const cutRt = fleet.instance({ redisUrl: `redis://127.0.0.1:${proxy.port}` })
    const cutWatcher = new StageWatcher(cutRt, { instanceId: 'cut-off', pollMs: 100, heartbeatMs: 100, heartbeatTtlMs: 300, redisTimeoutMs: 200 })
    await cutWatcher.start()
    let writers: { stop(): Promise<void> }[] = []
    try {
      await until(() => cutWatcher.current()?.version === before.version, 1_000, 'cut-off instance at the current version')
      proxy.cut()
      await until(() => !cutWatcher.ready, 1_000, 'cut-off instance not ready')
      // Its heartbeat expires: it is no longer a live instance the switch waits for.
      await new Promise((r) => setTimeout(r, 400))

      const writer = startWriter(fleet.rt, watcher, { firstId: 100_000 })
      const cutWriter = startWriter(cutRt, cutWatcher, { firstId: 500_000 })
      writers = [writer, cutWriter]
      await new Promise((r) => setTimeout(r, 300))
      const r = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders(), actor: 'test', ackTimeoutMs: 1_000 })
      const movedAt = performance.now()
      expect(r.outcome, r.reasons.join('; ')).toBe('done')
      const flip = r.to!.version
      expect(r.to!.stage).toBe('write-shards')
      expect(r.fenceMs).toBeLessThan(1_000)
      expect(r.steps.find((s) => s.step === 'drain-journal')!.status).toBe('done')
      await new Promise((r) => setTimeout(r, 300))
      await writer.stop()
      // The cut-off instance stops only after it tried again and again after the flip.
      const refusedAfter = cutWriter.refused.length
      await cutWriter.stop()

      expect(cutWatcher.current()!.version).toBe(before.version)
      expect(cutWatcher.ready).toBe(false)
      proxy.restore()
      await until(() => cutWatcher.ready && cutWatcher.current()!.version === flip, 10_000, 'the cut-off instance to catch up')
      expect(refusedAfter).toBeGreaterThan(0)
      expect(cutWriter.refused.every((x) => x.version === before.version)).toBe(true)

      const rows = await rowsBySide(fleet.rt)
      // No lost write: every write reported committed is where its stage put it, exactly once.
      for (const w of [...writer.committed, ...cutWriter.committed]) {
        const onLegacy = rows.legacy.get(w.orderId)
        const onUser = rows.user.get(w.orderId)
        expect([onLegacy, onUser].filter((x) => x !== undefined)).toHaveLength(1)
        expect(w.side === 'legacy' ? onLegacy : onUser).toBe(w.version)
      }
      // No write planned before the flip committed after the move returned (the fence had opened at the new version).
      expect([...writer.committed, ...cutWriter.committed].filter((w) => w.version < flip && w.committedAt > movedAt)).toEqual([])
      // Nothing planned before the flip landed on the old primary after it; nothing planned at the new version landed on legacy.
      const legacyVersions = [...rows.legacy.values()]
      expect(legacyVersions.every((v) => v < flip)).toBe(true)
      expect(writer.committed.some((w) => w.version === flip && w.side === 'user')).toBe(true)
      expect(writer.committed.some((w) => w.version < flip && w.side === 'legacy')).toBe(true)
      // Every cut-off write after the flip was refused: none of its rows carries the flip and the last one still retried.
      const cutIds = new Set(cutWriter.committed.map((w) => w.orderId))
      expect(cutWriter.refused.some((x) => !cutIds.has(x.orderId))).toBe(true)

      const h = await readHistory(fleet.rt, { limit: 1 })
      expect(h[0]).toMatchObject({ outcome: 'done', action: 'advance', to: { stage: 'write-shards' } })
      expect(h[0]!.fenceMs).toBeLessThan(1_000)

      // A direct write planned at the old version is refused by the database too (retryable).
      const err = await fencedInsert(fleet.rt, before, '900002', '6').catch((e: unknown) => e)
      expect(isShardkitError(err, 'FENCE_REJECTED') && err.retryable).toBe(true)
    } finally {
      await Promise.allSettled(writers.map((w) => w.stop()))
      proxy.restore()
      await cutWatcher.close()
      // Close while the proxy still forwards: a Redis client reconnecting to a closed port never finishes QUIT.
    }
  })

  it('drains the dual-write journal inside the fence when the write primary switches back', async () => {
    const at = await readStageState(fleet.rt)
    expect(at.stage).toBe('write-shards')
    const userId = '77'
    const w = await fencedInsert(fleet.rt, at, '910001', userId)
    expect(w.side).toBe('user')
    const p = fleet.config.dimensions.user.shards[77]!
    const conn = await fleet.rt.host(p.host).getConnection()
    try {
      await insertJournalEntry(conn, p.database, { orderId: '910001', op: 'insert', secondaries: ['merchant', 'legacy'], userId, merchantId: '7' })
    } finally {
      conn.release()
    }
    expect((await readJournalDepth(fleet.rt)).total).toBe(1)
    const r = await moveStage(fleet.rt, { kind: 'rollback', actor: 'test' })
    expect(r.outcome, r.reasons.join('; ')).toBe('done')
    expect(r.steps.find((s) => s.step === 'drain-journal')).toMatchObject({ status: 'done' })
    expect((await readJournalDepth(fleet.rt)).total).toBe(0)
    expect((await rowsBySide(fleet.rt)).legacy.get('910001')).toBe(at.version)
  })

  it('the raise waits for writes in flight; new writes wait on the raised fence, then the old version is refused and the new one commits', async () => {
    const at = await readStageState(fleet.rt)
    const next = { ...at, version: at.version + 1 }
    // A transaction in flight: it passed the fence and has not committed.
    const conn = await fleet.rt.legacy().getConnection()
    await conn.beginTransaction()
    await checkFence(conn, fleet.config.legacy.database, at.version)
    let raisedAt = 0
    const raising = raiseFences(fleet.rt, { currentVersion: at.version, timeoutMs: 5_000 }).then((r) => ((raisedAt = performance.now()), r))
    await new Promise((r) => setTimeout(r, 150))
    expect(raisedAt).toBe(0)
    const committedAt = performance.now()
    await conn.commit()
    conn.release()
    const raised = await raising
    expect(raisedAt).toBeGreaterThanOrEqual(committedAt)
    // New writes queue behind the raised fence.
    const outcome = (p: Promise<unknown>) => p.then(() => 'committed', (e: unknown) => (isShardkitError(e, 'FENCE_REJECTED') && e.retryable ? 'refused' : `error ${String(e)}`))
    const oldWrite = outcome(fencedInsert(fleet.rt, at, '920001', '8'))
    const newWrite = outcome(fencedInsert(fleet.rt, next, '920002', '8'))
    let settled = false
    void Promise.race([oldWrite, newWrite]).then(() => (settled = true))
    await new Promise((r) => setTimeout(r, 150))
    expect(settled).toBe(false)
    expect(await raised.open(next.version)).toEqual([])
    expect(await oldWrite).toBe('refused')
    expect(await newWrite).toBe('committed')
    expect(await openFencesAt(fleet.rt, at.version)).toEqual([])
  })
})
