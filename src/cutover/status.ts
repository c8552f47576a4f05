/**
 * Everything `shardctl cutover status` shows, read without taking the run
 * lock: the stage (Redis and durable copy), live instances and the versions
 * they acknowledged, fences, journal depth, last verify, who holds the lock.
 */
import type { Runtime } from '../runtime/runtime.js'
import { readJournalDepth } from '../dualwrite/journal.js'
import type { StageState } from './stages.js'
import { readLastVerify, type VerifySummary } from './contract-readers.js'
import { readFences, type FenceReading } from './fence.js'
import { inconsistency } from './recovery.js'
import { readDurableStage, readLiveInstances, readRedisStage, readRunLock, type InstanceAck } from './switch-store.js'
import { INITIAL_STAGE_STATE } from './transitions.js'

/** A value, or why it could not be read (status never fails on one source). */
export type Maybe<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string }

/** The cutover as one screen. */
export interface CutoverStatus {
  /** What the fleet follows (Redis, else the durable copy, else legacy v0). */
  readonly state: StageState
  readonly source: 'redis' | 'control-db' | 'default'
  readonly redisReachable: boolean
  readonly stageEnteredAt: string | null
  readonly instances: Maybe<readonly InstanceAck[]>
  readonly fences: readonly FenceReading[]
  readonly journal: Maybe<{ total: number; byPrimary: Record<string, number> }>
  readonly lastVerify: Maybe<VerifySummary | null>
  readonly lock: { actor: string; host: string; pid: number; since: string } | null
  /** Set when Redis, the durable copy and the fences disagree (the next move recovers). */
  readonly problem: string | null
}

async function maybe<T>(fn: () => Promise<T>): Promise<Maybe<T>> {
  try {
    return { ok: true, value: await fn() }
  } catch (err) {
    const e = err as { code?: string; message?: string }
    return { ok: false, error: String(e?.code ?? e?.message ?? err) }
  }
}

/** Reads the cutover status. Throws only when the control database is unreachable and Redis too. */
export async function readCutoverStatus(rt: Runtime): Promise<CutoverStatus> {
  const prefix = rt.config.redis.keyPrefix
  const [redis, durable, instances, fences, journal, lastVerify, lock] = await Promise.all([
    maybe(() => readRedisStage(rt.redis(), prefix)),
    maybe(() => readDurableStage(rt)),
    maybe(() => readLiveInstances(rt.redis(), prefix)),
    readFences(rt),
    maybe(() => readJournalDepth(rt)),
    maybe(() => readLastVerify(rt)),
    readRunLock(rt).catch(() => undefined),
  ])
  const r = redis.ok ? redis.value : undefined
  const d = durable.ok ? durable.value : undefined
  const state = r ?? d?.state ?? INITIAL_STAGE_STATE
  return {
    state,
    source: r ? 'redis' : d ? 'control-db' : 'default',
    redisReachable: redis.ok,
    stageEnteredAt: d?.stageEnteredAt ?? null,
    instances,
    fences,
    journal,
    lastVerify,
    lock: lock ?? null,
    problem: redis.ok && durable.ok ? (inconsistency(r, d?.state, fences) ?? null) : redis.ok ? 'cannot read the durable stage copy' : 'Redis is unreachable: instances keep their last stage and report not ready',
  }
}
