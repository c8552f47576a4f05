/**
 * Recovery from an interrupted move (the Vitess failure mode: a restart in
 * the middle of a traffic switch). A move that died before its commit point
 * leaves Redis ahead of the durable copy, or fences not open at the live
 * version. The next move, under the run lock, first puts the durable stage
 * back as a new version: published, written, every fence opened at it.
 *
 * What it restores is decided only once it holds every fence exclusively:
 * then no other move can be between its raise and its open, so the versions
 * it reads (Redis, the durable copy, the fences) are final, and the restored
 * version is above all of them. The durable write is compare-and-set on the
 * version read there and on the run-lock token; if it fails nothing is
 * opened (writes stay refused until a move that holds the lock recovers).
 */
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import type { StageState } from './stages.js'
import { raiseFences, readFences, type FenceReading } from './fence.js'
import { appendAudit, publishStage, readDurableStage, readLiveInstances, readRedisStage, writeDurableStage, type RunLock } from './switch-store.js'
import { INITIAL_STAGE_STATE } from './transitions.js'
import { drainJournal } from '../dualwrite/journal.js'

/** What is inconsistent, or undefined when Redis, the durable copy and every fence agree (pure). */
export function inconsistency(redis: StageState | undefined, durable: StageState | undefined, fences: readonly FenceReading[]): string | undefined {
  if (redis === undefined && durable === undefined) {
    const stray = fences.filter((f) => !(f.state === 'missing' || (f.state === 'open' && f.version === 0)))
    return stray.length ? `no stage was ever set but fences exist on ${stray.map((f) => `${f.primary} (${f.state} v${f.version})`).join(', ')}` : undefined
  }
  if (redis === undefined) return `Redis holds no stage while the durable copy is ${durable!.stage} v${durable!.version}`
  if (durable === undefined) return `the durable copy is missing while Redis holds ${redis.stage} v${redis.version}`
  if (redis.version !== durable.version || redis.stage !== durable.stage || redis.readPercent !== durable.readPercent) {
    return `Redis holds ${redis.stage} v${redis.version} but the durable copy ${durable.stage} v${durable.version} (a move was interrupted before its commit point)`
  }
  const off = fences.filter((f) => f.state !== 'open' || f.version !== durable.version)
  return off.length ? `fences not open at v${durable.version}: ${off.map((f) => `${f.primary} ${f.state}${f.version === null ? '' : ` v${f.version}`}`).join(', ')}` : undefined
}

async function readAll(rt: Runtime): Promise<{ redis: StageState | undefined; durable: Awaited<ReturnType<typeof readDurableStage>>; fences: FenceReading[] }> {
  const [redis, durable, fences] = await Promise.all([readRedisStage(rt.redis(), rt.config.redis.keyPrefix), readDurableStage(rt), readFences(rt)])
  const down = fences.filter((f) => f.state === 'unreachable')
  if (down.length) {
    throw new ShardkitError('SHARD_FAILED', `cannot read the write fence on ${down.map((f) => f.primary).join(', ')}; every primary must be reachable to move the stage`, { primaries: down.map((f) => f.primary) }, { retryable: true })
  }
  return { redis, durable, fences }
}

/**
 * Restores the durable stage as a new version when the stores disagree.
 * Call under the run lock. Returns undefined when nothing needed recovery.
 * @throws ShardkitError `SHARD_FAILED` when a primary cannot be reached (every fence must be checked); `CUTOVER_ABORTED` when the journal does not drain or another move changed the durable copy
 */
export async function recoverIfNeeded(rt: Runtime, o: { actor: string; ackTimeoutMs: number; now: () => Date; lock: RunLock }): Promise<{ from: StageState; to: StageState; reason: string; fenceMs: number } | undefined> {
  const first = await readAll(rt)
  if (inconsistency(first.redis, first.durable?.state, first.fences) === undefined) return undefined
  const t0 = performance.now()
  const raised = await raiseFences(rt, { currentVersion: Math.max(0, ...first.fences.map((f) => f.version ?? 0)), timeoutMs: o.ackTimeoutMs })
  let opened = false
  try {
    // Under every fence: nothing else can publish, commit or open now; read again and decide.
    const { redis, durable } = await readAll(rt)
    const fences = await readFences(rt)
    const problem = inconsistency(redis, durable?.state, fences)
    if (problem === undefined) return undefined
    const target = durable?.state ?? redis ?? INITIAL_STAGE_STATE
    const from = redis ?? target
    const top = Math.max(redis?.version ?? 0, durable?.state.version ?? 0, ...fences.map((f) => f.version ?? 0), ...first.fences.map((f) => f.version ?? 0))
    const restore: StageState = { stage: target.stage, readPercent: target.readPercent, version: top + 1, changedAt: o.now().toISOString() }
    rt.logger.warn({ problem, restore: `${restore.stage} v${restore.version}` }, 'cutover: recovering an interrupted move')
    // A move that died after its commit point left the fences at the old version, so an
    // instance that missed the switch may have committed on the old primary since; replay
    // everything journaled while no write can commit, before the restored stage takes effect.
    const drained = await drainJournal(rt, { signal: AbortSignal.timeout(Math.max(5_000, o.ackTimeoutMs)), logger: rt.logger, concurrency: 8 })
    if (drained.remaining > 0 || drained.failed > 0 || drained.unreachable.length > 0) {
      throw new ShardkitError(
        'CUTOVER_ABORTED',
        `recovery could not drain the dual-write journal inside the fence (${drained.remaining} left${drained.unreachable.length ? `, unreachable: ${drained.unreachable.join(', ')}` : ''}); run \`shardctl dualwrite drain\`, then the move again`,
        { remaining: drained.remaining },
      )
    }
    await o.lock.assertHeld()
    await publishStage(rt, restore)
    // Give the instances the usual bound to follow; recovery does not abort on a laggard (the fence refuses it).
    const deadline = performance.now() + o.ackTimeoutMs
    while (performance.now() < deadline) {
      const live = await readLiveInstances(rt.redis(), rt.config.redis.keyPrefix)
      if (live.every((a) => a.version >= restore.version)) break
      await new Promise((r) => setTimeout(r, 10))
    }
    await o.lock.assertHeld()
    await raised.persist(restore.version)
    await writeDurableStage(rt, restore, durable?.state.stage !== restore.stage, { version: durable ? durable.state.version : null, lockToken: o.lock.token })
    const notOpen = await raised.open(restore.version)
    opened = true
    const fenceMs = performance.now() - t0
    const detail = problem + (notOpen.length ? `; fences not reopened on ${notOpen.join(', ')}` : '')
    await appendAudit(rt, { actor: o.actor, action: 'recover', outcome: 'done', from, to: restore, reason: null, forced: false, forcedGuards: [], fenceMs, detail }).catch((err) =>
      rt.logger.error({ err: (err as Error).message }, 'cutover recovery: audit row not written'),
    )
    return { from, to: restore, reason: `recovered an interrupted move: ${problem}; restored ${restore.stage} as version ${restore.version}. Check \`shardctl cutover status\` and run the move again`, fenceMs }
  } finally {
    // Failed before opening: roll back what is still held (persisted rows stay raised: writes refused, safe).
    if (!opened) await raised.release()
  }
}
