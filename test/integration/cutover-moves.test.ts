import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { moveStage } from '../../src/cutover/steps.js'
import { assertBackfillAllowed, type GuardReaders } from '../../src/cutover/guards.js'
import { readFences } from '../../src/cutover/fence.js'
import { readCutoverStatus } from '../../src/cutover/status.js'
import { acquireRunLock, publishStage, readDurableStage, readHistory, readStageState, removeHeartbeat, writeHeartbeat } from '../../src/cutover/switch-store.js'
import { insertJournalEntry, JOURNAL_TABLE } from '../../src/dualwrite/journal.js'
import { isShardkitError } from '../../src/errors.js'
import { qualified } from '../../src/runtime/mysql.js'
import { passingReaders, setupFleet, walkTo, type Fleet } from './cutover-support.js'

let fleet: Fleet

beforeAll(async () => {
  fleet = await setupFleet('comoves')
})

afterAll(async () => {
  await fleet?.cleanup()
})

const failingReaders = (): GuardReaders => ({
  ...passingReaders(),
  readBackfillStatus: async () => ({
    state: 'running',
    dimensions: { user: { state: 'complete', rowsCopied: 50, updatedAt: null }, merchant: { state: 'running', rowsCopied: 20, updatedAt: null } },
    completedAt: null,
  }),
  readLastVerify: async () => ({ runId: 'v9', startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(), clean: false, differences: 3, since: null, dimension: 'all' }),
})

describe('cutover moves', () => {
  it('refuses backfill before dual-write, and while a live instance is still at legacy', async () => {
    await expect(assertBackfillAllowed(fleet.rt)).rejects.toMatchObject({ code: 'PRECONDITION_FAILED', message: expect.stringContaining('the stage is legacy') })
    const prefix = fleet.config.redis.keyPrefix
    await writeHeartbeat(fleet.rt.redis(), prefix, 'old-instance', { version: 0, stage: 'legacy' }, 30_000)
    // The move to dual-write waits for it and aborts: it is live and behind.
    const r = await moveStage(fleet.rt, { kind: 'advance', actor: 'test', ackTimeoutMs: 200 })
    expect(r.outcome).toBe('aborted')
    expect((await readStageState(fleet.rt)).stage).toBe('legacy')
    await removeHeartbeat(fleet.rt.redis(), prefix, 'old-instance')
    const done = await moveStage(fleet.rt, { kind: 'advance', actor: 'test' })
    expect(done.outcome).toBe('done')
    await expect(assertBackfillAllowed(fleet.rt)).resolves.toBeUndefined()
    await writeHeartbeat(fleet.rt.redis(), prefix, 'lagging', { version: 0, stage: 'legacy' }, 30_000)
    await expect(assertBackfillAllowed(fleet.rt)).rejects.toMatchObject({ code: 'PRECONDITION_FAILED', message: expect.stringContaining('lagging') })
    await removeHeartbeat(fleet.rt.redis(), prefix, 'lagging')
  })

  it('guards refuse with every reason; a dry run changes nothing; --force needs a reason and is audited', async () => {
    const from = await readStageState(fleet.rt)
    expect(from.stage).toBe('dual-write')
    const conn = await fleet.rt.legacy().getConnection()
    try {
      await insertJournalEntry(conn, fleet.config.legacy.database, { orderId: '42', op: 'insert', secondaries: ['user', 'merchant'], userId: '42', merchantId: '7' })
    } finally {
      conn.release()
    }
    // A fresh entry is a write still copying to its secondaries: it must not block a move
    // (every write leaves one for a few ms, and the guard flickered under traffic in the demo).
    const fresh = await moveStage(fleet.rt, { kind: 'advance', dryRun: true, readers: failingReaders() })
    expect(fresh.reasons).toHaveLength(2)
    await fleet.rt.legacy().query(`UPDATE ${qualified(fleet.config.legacy.database, JOURNAL_TABLE)} SET created_at = NOW(3) - INTERVAL 10 SECOND`)
    const dry = await moveStage(fleet.rt, { kind: 'advance', dryRun: true, readers: failingReaders() })
    expect(dry.outcome).toBe('dry-run')
    expect(dry.steps.map((s) => s.step)).toContain('raise-fences')
    expect(dry.reasons).toHaveLength(3)

    const r = await moveStage(fleet.rt, { kind: 'advance', readers: failingReaders(), actor: 'test' })
    expect(r.outcome).toBe('refused')
    expect(r.guards.filter((g) => !g.ok).map((g) => g.guard)).toEqual(['backfill-complete', 'verify-clean', 'journal-empty'])
    expect(r.reasons.join('\n')).toMatch(/backfill is running[\s\S]*3 differing rows[\s\S]*journal holds 1 entries \(legacy: 1\)/)
    expect(await readStageState(fleet.rt)).toEqual(from)

    await expect(moveStage(fleet.rt, { kind: 'advance', readers: failingReaders(), force: true })).rejects.toMatchObject({ code: 'USAGE' })
    const forced = await moveStage(fleet.rt, { kind: 'advance', readers: failingReaders(), force: true, reason: 'incident 123: verified by hand', actor: 'dba-on-call' })
    expect(forced.outcome).toBe('done')
    expect(forced.forcedGuards).toEqual(['backfill-complete', 'verify-clean', 'journal-empty'])
    const [last, refused] = await readHistory(fleet.rt, { limit: 2 })
    expect(last).toMatchObject({ outcome: 'done', forced: true, forcedGuards: ['backfill-complete', 'verify-clean', 'journal-empty'], reason: 'incident 123: verified by hand', actor: 'dba-on-call', to: { stage: 'shadow-read' } })
    expect(refused).toMatchObject({ outcome: 'refused', forced: false, detail: 'backfill-complete,verify-clean,journal-empty' })
    await fleet.rt.legacy().query(`DELETE FROM ${qualified(fleet.config.legacy.database, JOURNAL_TABLE)}`)
  })

  it('refuses a second move while one runs (ALREADY_RUNNING, exit 5)', async () => {
    const lock = await acquireRunLock(fleet.rt, 'someone-else')
    try {
      const err = await moveStage(fleet.rt, { kind: 'advance', readers: passingReaders() }).catch((e: unknown) => e)
      expect(isShardkitError(err, 'ALREADY_RUNNING')).toBe(true)
      expect((err as Error).message).toContain('someone-else')
    } finally {
      await lock.release()
    }
    // Two at once: exactly one wins.
    const both = await Promise.allSettled([moveStage(fleet.rt, { kind: 'advance', percent: 5, readers: passingReaders() }), moveStage(fleet.rt, { kind: 'advance', percent: 5, readers: passingReaders() })])
    expect(both.filter((b) => b.status === 'fulfilled' && b.value.outcome === 'done')).toHaveLength(1)
    expect(both.filter((b) => b.status === 'rejected' && isShardkitError(b.reason, 'ALREADY_RUNNING'))).toHaveLength(1)
    expect(await readStageState(fleet.rt)).toMatchObject({ stage: 'read-shards', readPercent: 5 })
  })

  it('walks to shards, refuses rollback past the point of no return without --force, and rolls back to legacy with every move in history', async () => {
    await walkTo(fleet.rt, 'read-shards', 50)
    await walkTo(fleet.rt, 'shards')
    expect((await readStageState(fleet.rt)).stage).toBe('shards')
    const refused = await moveStage(fleet.rt, { kind: 'rollback', actor: 'test' })
    expect(refused.outcome).toBe('refused')
    expect(refused.reasons[0]).toContain('legacy has received no writes')
    const back = await moveStage(fleet.rt, { kind: 'rollback', force: true, reason: 'legacy re-backfilled and verified', actor: 'test' })
    expect(back.outcome).toBe('done')
    for (let i = 0; i < 10; i++) {
      const r = await moveStage(fleet.rt, { kind: 'rollback', actor: 'test' })
      if (r.outcome !== 'done') {
        expect(r.reasons[0]).toContain('already at legacy')
        break
      }
    }
    const s = await readStageState(fleet.rt)
    expect(s.stage).toBe('legacy')
    for (const f of await readFences(fleet.rt)) expect(f).toMatchObject({ state: 'open', version: s.version })
    const h = (await readHistory(fleet.rt, { limit: 100 })).filter((e) => e.outcome === 'done').reverse()
    const path = h.map((e) => `${e.action}:${e.to!.stage}${e.to!.stage === 'read-shards' ? `@${e.to!.readPercent}` : ''}`)
    expect(path).toEqual([
      'advance:dual-write', 'advance:shadow-read', 'advance:read-shards@5', 'advance:read-shards@50', 'advance:read-shards@100', 'advance:write-shards', 'advance:shards',
      'rollback:write-shards', 'rollback:read-shards@100', 'rollback:shadow-read', 'rollback:dual-write', 'rollback:legacy',
    ])
    // Versions rise by one per change (the abort at the start used two).
    const versions = h.map((e) => e.to!.version)
    expect(versions.slice(1).every((v, i) => v === versions[i]! + 1)).toBe(true)
    expect(h.find((e) => e.to!.stage === 'write-shards' && e.action === 'advance')!.fenceMs).not.toBeNull()
  })

  it('recovers an interrupted move: Redis ahead of the durable copy is put back as a new version', async () => {
    const s = await readStageState(fleet.rt)
    // A move that died after publishing, before its commit point.
    await publishStage(fleet.rt, { stage: 'dual-write', version: s.version + 1, readPercent: 0, changedAt: new Date().toISOString() })
    const status = await readCutoverStatus(fleet.rt)
    expect(status.problem).toContain('interrupted')
    const r = await moveStage(fleet.rt, { kind: 'advance', actor: 'test' })
    expect(r.outcome).toBe('recovered')
    const now = await readStageState(fleet.rt)
    expect(now).toMatchObject({ stage: 'legacy', version: s.version + 2 })
    expect((await readDurableStage(fleet.rt))!.state.version).toBe(s.version + 2)
    for (const f of await readFences(fleet.rt)) expect(f).toMatchObject({ state: 'open', version: s.version + 2 })
    expect((await readCutoverStatus(fleet.rt)).problem).toBeNull()
    expect((await readHistory(fleet.rt, { limit: 1 }))[0]).toMatchObject({ action: 'recover', outcome: 'done' })
  })
})
