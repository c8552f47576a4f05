/**
 * Where the stage lives: in Redis (`<prefix>cutover:stage`, JSON with a
 * version, changes published on `<prefix>cutover:changes`) for the instances,
 * and in the control database (`shardkit_stage`, one row, plus the
 * append-only `shardkit_cutover_audit`) as the durable copy and the record of
 * every move. The per-instance heartbeats are in instances.ts, the run lock
 * in run-lock.ts (re-exported here).
 */
import type { Redis } from 'ioredis'
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { CUTOVER_LOCK, RUN_LOCK_TABLE } from './run-lock.js'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { STAGES, type Stage, type StageState } from './stages.js'
import { INITIAL_STAGE_STATE, isStage } from './transitions.js'

/** Control table with the durable copy of the stage (one row, id = 1). */
export const STAGE_TABLE = 'shardkit_stage'
/** Control table with one row per move attempt, never updated or deleted. */
export const AUDIT_TABLE = 'shardkit_cutover_audit'

/** The Redis keys of one fleet (under the config's key prefix). */
export function cutoverKeys(prefix: string) {
  return {
    stage: `${prefix}cutover:stage`,
    channel: `${prefix}cutover:changes`,
    instances: `${prefix}cutover:instances`,
    expiry: `${prefix}cutover:instances:expiry`,
  }
}

/** Parses a stage state from its JSON text; undefined when it is not one. */
export function parseStageState(text: string | null | undefined): StageState | undefined {
  if (!text) return undefined
  try {
    const v = JSON.parse(text) as Record<string, unknown>
    if (!isStage(v.stage) || !Number.isSafeInteger(v.version) || typeof v.readPercent !== 'number' || typeof v.changedAt !== 'string') return undefined
    return { stage: v.stage, version: v.version as number, readPercent: v.readPercent, changedAt: v.changedAt }
  } catch {
    return undefined
  }
}

/** Reads the stage from Redis; undefined when never set. Throws on Redis errors. */
export async function readRedisStage(redis: Redis, prefix: string): Promise<StageState | undefined> {
  return parseStageState(await redis.get(cutoverKeys(prefix).stage))
}

/** The durable copy, with when the current stage (not ramp step) was entered. */
export interface DurableStage {
  readonly state: StageState
  readonly stageEnteredAt: string | null
}

function isoOf(v: unknown): string {
  // dateStrings pools return 'YYYY-MM-DD HH:MM:SS.mmm' in UTC (the session time zone is set per write).
  const s = String(v)
  return s.includes('T') ? s : `${s.replace(' ', 'T')}Z`
}

/** Reads the durable copy; undefined when the table or row is missing. */
export async function readDurableStage(rt: Runtime): Promise<DurableStage | undefined> {
  try {
    const [rows] = await rt.control().query<RowDataPacket[]>(
      `SELECT stage, version, read_percent, changed_at, stage_entered_at FROM ${qualified(rt.config.control.database, STAGE_TABLE)} WHERE id = 1`,
    )
    const r = rows[0]
    if (!r || !isStage(r.stage)) return undefined
    return {
      state: { stage: r.stage, version: Number(r.version), readPercent: Number(r.read_percent), changedAt: isoOf(r.changed_at) },
      stageEnteredAt: r.stage_entered_at === null ? null : isoOf(r.stage_entered_at),
    }
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ER_NO_SUCH_TABLE' || code === 'ER_BAD_DB_ERROR') return undefined
    throw err
  }
}

/**
 * The stage as the fleet follows it: Redis, else the durable copy in the
 * control database, else `legacy` at version 0 when never set.
 * @throws the control database's error when Redis is down and the control database too
 */
export async function readStageState(rt: Runtime): Promise<StageState> {
  try {
    const s = await readRedisStage(rt.redis(), rt.config.redis.keyPrefix)
    if (s) return s
  } catch (err) {
    rt.logger.warn({ err: (err as Error).message }, 'cutover: Redis unavailable, reading the durable stage copy')
  }
  return (await readDurableStage(rt))?.state ?? INITIAL_STAGE_STATE
}

/** Sets the stage in Redis and tells every watcher (pub/sub). */
export async function publishStage(rt: Runtime, state: StageState): Promise<void> {
  const k = cutoverKeys(rt.config.redis.keyPrefix)
  const text = JSON.stringify(state)
  await rt.redis().multi().set(k.stage, text).publish(k.channel, text).exec()
}

/** One row of the audit log. */
export interface AuditEntry {
  readonly id?: string
  readonly at?: string
  readonly actor: string
  readonly action: 'advance' | 'rollback' | 'recover'
  readonly outcome: 'done' | 'aborted' | 'refused'
  readonly from: StageState
  readonly to: StageState | null
  readonly reason: string | null
  readonly forced: boolean
  /** Guards that failed and were overridden with --force. */
  readonly forcedGuards: readonly string[]
  /** Milliseconds writes were held by the fence; null when no fence was raised. */
  readonly fenceMs: number | null
  /** Why a move was aborted or refused (keys and instance ids only). */
  readonly detail: string | null
}

function missingTables(rt: Runtime, err: unknown): unknown {
  const code = (err as { code?: string }).code
  if (code === 'ER_NO_SUCH_TABLE' || code === 'ER_BAD_DB_ERROR') {
    const db = rt.config.control.database
    return new ShardkitError('PRECONDITION_FAILED', `the cutover tables do not exist in ${db}; run \`shardctl provision\` first`, { database: db }, { cause: err })
  }
  return err
}

/** What a durable write must find in place, or it writes nothing (compare-and-set). */
export interface DurableExpectation {
  /** The durable version the writer read (null: no row yet). */
  readonly version: number | null
  /** The run-lock token the writer holds: the write applies only while that lock is held and unexpired. */
  readonly lockToken?: string
}

/**
 * Writes the durable copy of the stage (the commit point of a move), compare-
 * and-set on the version the writer read and on its run-lock token, so two
 * movers can never both commit (an emptied Redis once let a second move
 * commit beside a running one). Times are the control database's clock.
 * `stageChanged` moves `stage_entered_at` (a ramp step does not).
 * @throws ShardkitError `CUTOVER_ABORTED` when the durable copy moved or the lock is not held (nothing written);
 *   `PRECONDITION_FAILED` when the control tables do not exist (run `shardctl provision`)
 */
export async function writeDurableStage(rt: Runtime, s: StageState, stageChanged: boolean, expect: DurableExpectation): Promise<void> {
  const db = rt.config.control.database
  const t = qualified(db, STAGE_TABLE)
  const lockCond = expect.lockToken === undefined ? '' : ` AND EXISTS (SELECT 1 FROM ${qualified(db, RUN_LOCK_TABLE)} WHERE name = '${CUTOVER_LOCK}' AND token = ? AND expires_at >= UTC_TIMESTAMP(3))`
  const lockParams = expect.lockToken === undefined ? [] : [expect.lockToken]
  let res: ResultSetHeader
  try {
    if (expect.version === null) {
      ;[res] = await rt.control().query<ResultSetHeader>(
        `INSERT INTO ${t} (id, stage, version, read_percent, changed_at, stage_entered_at) SELECT 1, ?, ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM DUAL
           WHERE NOT EXISTS (SELECT 1 FROM ${t} WHERE id = 1)${lockCond}`,
        [s.stage, s.version, s.readPercent, ...lockParams],
      )
    } else {
      ;[res] = await rt.control().query<ResultSetHeader>(
        `UPDATE ${t} SET stage = ?, version = ?, read_percent = ?, changed_at = UTC_TIMESTAMP(3), stage_entered_at = IF(?, UTC_TIMESTAMP(3), stage_entered_at)
           WHERE id = 1 AND version = ?${lockCond}`,
        [s.stage, s.version, s.readPercent, stageChanged ? 1 : 0, expect.version, ...lockParams],
      )
    }
  } catch (err) {
    throw missingTables(rt, err)
  }
  if (res.affectedRows !== 1) {
    const now = await readDurableStage(rt).catch(() => undefined)
    throw new ShardkitError(
      'CUTOVER_ABORTED',
      `the durable stage is no longer version ${expect.version ?? 'unset'}${now ? ` (it is ${now.state.stage} v${now.state.version})` : ''}${expect.lockToken ? ', or this move no longer holds the run lock' : ''}: another move changed the fleet; nothing was written. Check \`shardctl cutover status\``,
      { expected: expect.version ?? -1, found: now?.state.version ?? -1 },
      { retryable: true },
    )
  }
}

/**
 * Appends one row to the audit log (never updated or deleted).
 * @throws ShardkitError `PRECONDITION_FAILED` when the control tables do not exist (run `shardctl provision`)
 */
export async function appendAudit(rt: Runtime, entry: AuditEntry): Promise<void> {
  const to = entry.to
  try {
    await rt.control().query(
      `INSERT INTO ${qualified(rt.config.control.database, AUDIT_TABLE)} (at, actor, action, outcome, from_stage, from_version, from_percent, to_stage, to_version, to_percent, reason, forced, forced_guards, fence_ms, detail)
         VALUES (UTC_TIMESTAMP(3), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [entry.actor.slice(0, 128), entry.action, entry.outcome, entry.from.stage, entry.from.version, entry.from.readPercent, to?.stage ?? null, to?.version ?? null, to?.readPercent ?? null,
        entry.reason?.slice(0, 512) ?? null, entry.forced ? 1 : 0, entry.forcedGuards.join(',').slice(0, 255), entry.fenceMs === null ? null : Math.round(entry.fenceMs), entry.detail?.slice(0, 1024) ?? null],
    )
  } catch (err) {
    throw missingTables(rt, err)
  }
}

function sqlTime(iso: string): string {
  return iso.replace('T', ' ').replace('Z', '').slice(0, 23)
}

/** The audit log, newest first. */
export async function readHistory(rt: Runtime, opts: { limit?: number } = {}): Promise<AuditEntry[]> {
  let rows: RowDataPacket[]
  try {
    ;[rows] = await rt.control().query<RowDataPacket[]>(`SELECT * FROM ${qualified(rt.config.control.database, AUDIT_TABLE)} ORDER BY id DESC LIMIT ?`, [opts.limit ?? 100])
  } catch (err) {
    if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE' || (err as { code?: string }).code === 'ER_BAD_DB_ERROR') return []
    throw err
  }
  const st = (stage: unknown, version: unknown, pct: unknown, at: string): StageState => ({ stage: stage as Stage, version: Number(version), readPercent: Number(pct), changedAt: at })
  return rows.map((r) => {
    const at = isoOf(r.at)
    return {
      id: String(r.id),
      at,
      actor: String(r.actor),
      action: r.action,
      outcome: r.outcome,
      from: st(r.from_stage, r.from_version, r.from_percent, at),
      to: r.to_stage === null ? null : st(r.to_stage, r.to_version, r.to_percent, at),
      reason: r.reason ?? null,
      forced: Number(r.forced) === 1,
      forcedGuards: String(r.forced_guards ?? '').split(',').filter(Boolean),
      fenceMs: r.fence_ms === null ? null : Number(r.fence_ms),
      detail: r.detail ?? null,
    }
  })
}

export { writeHeartbeat, removeHeartbeat, readLiveInstances, type InstanceAck } from './instances.js'
export { acquireRunLock, readRunLock, expireRunLock, defaultActor, type RunLock, type RunLockHolder } from './run-lock.js'

/** The stage names, for messages. */
export const STAGE_LIST = STAGES.join(' -> ')
