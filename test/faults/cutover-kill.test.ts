/**
 * Fault scenario: `shardctl cutover advance` (the real CLI, a child process)
 * killed with SIGKILL at each step of a write-primary switch
 * (read-shards 100% -> write-shards) while a service instance writes through
 * the dual-write store; then the operator reruns the move. Never stuck (the
 * rerun recovers or completes), never two primaries (every commit passed a
 * fence of a stage whose primary it went to), and afterwards Redis, the
 * durable copy, the fences and the live instance agree and every
 * acknowledged order is in legacy and each dimension exactly once.
 * Also: two `cutover advance` at once, the second refused with exit 5.
 *
 * Profile: default ~40 s. SHARDKIT_FAULTS_LONG=1 also waits once for the
 * dead holder's run lock to expire by itself (30 s) instead of expiring it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { moveStage } from '../../src/cutover/steps.js'
import { expireRunLock, readRunLock, readStageState } from '../../src/cutover/switch-store.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import type { Runtime } from '../../src/runtime/runtime.js'
import type { StageState } from '../../src/cutover/stages.js'
import { passingReaders, until, walkTo } from '../integration/cutover-support.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'
import { runShardctl, spawnShardctl } from './support/shardctl.js'
import { startLoad } from './support/load.js'
import { assertOneOpenVersion, assertOrdersExactlyOnce, assertSinglePrimary, assertStageAgreement, primaryCommitRecorder, type OrderLedger } from './support/invariants.js'

const LONG = process.env.SHARDKIT_FAULTS_LONG === '1'
let fleet: FaultFleet
let hooks: HookServer
let inst: Runtime
let watcher: StageWatcher
let store: DualWriteStore
const recorder = primaryCommitRecorder()
const ledger: OrderLedger = new Map()
/** Every stage the instance applied (a move killed after opening its fences leaves no audit row). */
const applied: StageState[] = []

beforeAll(async () => {
  fleet = await faultFleet('fcokill')
  hooks = await HookServer.listen()
  inst = fleet.instance()
  watcher = new StageWatcher(inst, { instanceId: 'fault-instance-1', heartbeatMs: 200, pollMs: 200 })
  watcher.on('change', (s) => applied.push(s))
  await watcher.start()
  store = new DualWriteStore({ runtime: inst, stage: watcher, onPrimaryWrite: recorder.hook, secondaryTimeoutMs: 1_000 })
  await walkTo(fleet.rt, 'read-shards', 100, { ackTimeoutMs: 10_000 })
})

afterAll(async () => {
  await hooks?.close()
  await watcher?.close()
  await fleet?.cleanup()
})

const advance = ['cutover', 'advance', '--force', '--reason', 'fault scenario', '--ack-timeout-ms', '10000', '--json', '--yes'] as const

/**
 * Per point: the operator's recovery command (rerun the advance, or roll
 * back), what each run of it reports until it is through, and the signal.
 */
const RERUNS: ReadonlyArray<readonly [point: string, outcomes: readonly string[], recovery?: 'rollback']> = [
  ['cutover.locked', ['done']],
  ['cutover.guards-passed', ['done']],
  // The fences are held by open transactions: the kill rolls them back, nothing to recover.
  ['cutover.fences-raised', ['done']],
  ['cutover.published', ['recovered', 'done']],
  // Rolling back instead: the recovery itself puts read-shards back (as a new version).
  ['cutover.published', ['recovered'], 'rollback'],
  ['cutover.acks-received', ['recovered', 'done']],
  ['cutover.journal-drained', ['recovered', 'done']],
  // After the commit point (the durable copy) the fences stay committed raised at the new
  // version; the recovery opens them at the new stage: nothing left to rerun.
  ['cutover.recorded', ['recovered']],
  ['cutover.fences-opened', []],
  ...(LONG ? ([['cutover.journal-drained', ['recovered'], 'rollback']] as const) : []),
]

describe('kill -9 / SIGTERM of `shardctl cutover advance` at each step of a write switch, then rerun or roll back', () => {
  it('is never stuck, never has two primaries, and loses or duplicates no order', async () => {
    const load = startLoad(store, ledger, { workers: 2, pauseMs: 5 })
    try {
      for (const [i, [point, expected, recovery]] of RERUNS.entries()) {
        // SIGTERM for every other run: the CLI has no SIGTERM handler, so it dies at the point too.
        const signal = i % 2 === 0 ? 'SIGKILL' : 'SIGTERM'
        const before = await readStageState(fleet.rt)
        expect(before).toMatchObject({ stage: 'read-shards', readPercent: 100 })
        const run = spawnShardctl(fleet.configPath, advance, { hooks: hooks.path! })
        const at = await hooks.waitFor(point)
        process.kill(at.pid, signal)
        const killed = await run.done
        expect(killed.signal, `${point}: ${killed.stderr}`).toBe(signal)
        // Whatever was left, the open fences never name two versions.
        await assertOneOpenVersion(fleet.rt)
        // The dead holder's lock names it and blocks a rerun until it expires (30 s).
        expect((await readRunLock(fleet.rt))?.pid).toBe(at.pid)
        if (LONG && i === 0) await until(async () => (await readRunLock(fleet.rt)) === undefined, 40_000, 'the dead holder lock to expire')
        else await expireRunLock(fleet.rt) // stands in for its 30 s TTL
        await until(async () => (await readRunLock(fleet.rt)) === undefined, 2_000, 'lock expiry')

        const outcomes: string[] = []
        for (let k = 0; k < expected.length; k++) {
          const r = await runShardctl(fleet.configPath, recovery === 'rollback' ? ['cutover', 'rollback', '--ack-timeout-ms', '10000', '--json'] : advance)
          expect(r.json, `${point} rerun ${k}: ${r.stderr}`).toBeDefined()
          outcomes.push(r.json.outcome)
          expect(r.code, `${point} rerun ${k}`).toBe(r.json.outcome === 'done' ? 0 : 3)
        }
        expect(outcomes, point).toEqual(expected)
        const after = await readStageState(fleet.rt)
        expect(after.stage, point).toBe(recovery === 'rollback' ? 'read-shards' : 'write-shards')
        await until(() => watcher.current()?.version === after.version, 5_000, 'the instance to follow')
        await assertStageAgreement(fleet.rt, [watcher])
        if (recovery === 'rollback') continue

        // Back to read-shards 100% for the next point (a normal, complete rollback).
        const back = await moveStage(fleet.rt, { kind: 'rollback', readers: passingReaders(), actor: 'fault-test', ackTimeoutMs: 10_000 })
        expect(back.outcome, back.reasons.join('; ')).toBe('done')
        await until(() => watcher.current()?.version === back.to!.version, 5_000, 'the instance to follow the rollback')
      }
    } finally {
      const stats = await load.stop()
      console.info(`[faults] cutover-kill: ${RERUNS.length} kills, ${stats.inserts} inserts / ${stats.updates} updates / ${stats.deletes} deletes acknowledged, ${stats.refusals} fence refusals retried, unknown ${JSON.stringify(stats.unknown)}`)
      expect(stats.inserts).toBeGreaterThan(20)
      // The kills left fences raised: writes were held (and retried), not lost.
      expect(stats.refusals).toBeGreaterThan(0)
    }
    await store.flush()
    expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, remaining: 0, unreachable: [] })
    await assertStageAgreement(fleet.rt, [watcher])
    const history = (id: string) => `primary commits ${recorder.commits.filter((c) => c.orderId === id).map((c) => `${c.side}@v${c.fenceVersion}`).join(' ') || 'none'}; stages ${applied.map((a) => `v${a.version} ${a.stage}`).join(', ')}`
    const { present } = await assertOrdersExactlyOnce(fleet.rt, ledger, { legacy: true, history })
    expect(present).toBeGreaterThan(0)
    await assertSinglePrimary(fleet.rt, recorder.commits, applied)
    expect(new Set(recorder.commits.map((c) => c.side))).toEqual(new Set(['legacy', 'user']))
  }, 240_000)

  it('two advances at once: the one holding the lock wins, the other exits 5 naming it', async () => {
    const before = await readStageState(fleet.rt)
    const first = spawnShardctl(fleet.configPath, advance, { hooks: hooks.path! })
    const held = await hooks.waitFor('cutover.locked')
    const second = await runShardctl(fleet.configPath, advance)
    expect(second.code, second.stderr).toBe(5)
    expect(second.stderr).toContain(`pid ${held.pid}`)
    held.continue()
    const r = await first.done
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'done', to: { stage: 'write-shards', version: before.version + 1 } })
    await until(() => watcher.current()?.version === before.version + 1, 5_000, 'the instance to follow')
    await assertStageAgreement(fleet.rt, [watcher])
  })
})
