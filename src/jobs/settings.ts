/**
 * Job settings in the control database: what `shardctl backfill|verify
 * pause|resume|throttle` writes and what a running job reads between chunks.
 * Kept in the database (not in the job's memory or a local file) so they act
 * across processes and machines and survive a restart of the job.
 *
 * Every change is one transaction (read the row FOR UPDATE, write the new
 * values, `revision + 1`), so two operators never lose each other's change,
 * and the answer names the old and the new value of every field it touched.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { isMissingTable } from '../runtime/mysql-errors.js'
import { JOB_CONTROL_TABLE, JOB_CONTROL_TABLE_DEF, JOB_PROGRESS_TABLE_DEF } from './tables.js'

/** The jobs an operator can control while they run. */
export type JobKind = 'backfill' | 'verify'
export const JOB_KINDS: readonly JobKind[] = ['backfill', 'verify']

/** The operator's settings of one job kind; null means "the job's own default / no throttle". */
export interface JobSettings {
  readonly job: JobKind
  readonly paused: boolean
  readonly maxRowsPerSecond: number | null
  readonly chunkSize: number | null
  readonly concurrency: number | null
  /** Up by one per change; 0 when never set. */
  readonly revision: number
  readonly updatedAt: string | null
  readonly updatedBy: string | null
  /** When the current pause began (null when running). */
  readonly pausedAt: string | null
  /** When the current rows/s limit was set (null when unthrottled). */
  readonly throttledAt: string | null
}

/** The tunable fields, as the CLI names them. */
export type TunableField = 'maxRowsPerSecond' | 'chunkSize' | 'concurrency'
export const FLAG_OF: Record<TunableField, string> = { maxRowsPerSecond: '--max-rows-per-second', chunkSize: '--chunk-size', concurrency: '--concurrency' }

/** Allowed ranges per job (the same as the jobs' own flags). */
export const SETTING_LIMITS: Record<JobKind, Record<TunableField, readonly [number, number]>> = {
  backfill: { maxRowsPerSecond: [1, 100_000_000], chunkSize: [1, 100_000], concurrency: [1, 64] },
  verify: { maxRowsPerSecond: [1, 100_000_000], chunkSize: [100, 10_000_000], concurrency: [1, 32] },
}

/** A change asked for: a number sets, null clears (back to the job's default), undefined keeps. */
export interface SettingsChange {
  readonly paused?: boolean
  readonly maxRowsPerSecond?: number | null
  readonly chunkSize?: number | null
  readonly concurrency?: number | null
}

/** One field that a change moved. */
export interface SettingTransition {
  readonly field: 'paused' | TunableField
  readonly from: boolean | number | null
  readonly to: boolean | number | null
}

function defaults(job: JobKind): JobSettings {
  return { job, paused: false, maxRowsPerSecond: null, chunkSize: null, concurrency: null, revision: 0, updatedAt: null, updatedBy: null, pausedAt: null, throttledAt: null }
}

/**
 * Parses one tunable value as given on the command line. `off` clears the
 * rows/s limit, `auto` the chunk size (backfill tunes it again), `default`
 * any of them.
 * @throws ShardkitError `USAGE` naming the flag, its range and what was given
 */
export function parseSettingValue(job: JobKind, field: TunableField, text: string): number | null {
  const flag = FLAG_OF[field]
  const [min, max] = SETTING_LIMITS[job][field]
  const t = text.trim()
  const clear = field === 'maxRowsPerSecond' ? ['off', 'default'] : field === 'chunkSize' && job === 'backfill' ? ['auto', 'default'] : ['default']
  if (clear.includes(t)) return null
  if (!/^\d+$/.test(t) || Number(t) < min || Number(t) > max) {
    const shown = t === '' ? 'an empty value' : `"${text}"`
    throw new ShardkitError('USAGE', `${flag} must be a whole number from ${min} to ${max}, or ${clear.join(' / ')} (got ${shown})`, { argument: flag })
  }
  return Number(t)
}

function isoOf(v: unknown): string | null {
  if (v === null || v === undefined) return null
  const s = String(v)
  return s.includes('T') ? s : `${s.replace(' ', 'T')}Z`
}

function rowToSettings(job: JobKind, r: RowDataPacket | undefined): JobSettings {
  if (!r) return defaults(job)
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v))
  return {
    job,
    paused: Number(r.paused) === 1,
    maxRowsPerSecond: n(r.max_rows_per_second),
    chunkSize: n(r.chunk_size),
    concurrency: n(r.concurrency),
    revision: Number(r.revision),
    updatedAt: isoOf(r.updated_at),
    updatedBy: r.updated_by ? String(r.updated_by) : null,
    pausedAt: isoOf(r.paused_at),
    throttledAt: isoOf(r.throttled_at),
  }
}

const COLUMNS = 'paused, max_rows_per_second, chunk_size, concurrency, revision, updated_at, updated_by, paused_at, throttled_at'

/** Reads one job's settings (defaults when never set or not provisioned). */
export async function readJobSettings(rt: Runtime, job: JobKind): Promise<JobSettings> {
  try {
    const [rows] = await rt.control().query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM ${qualified(rt.config.control.database, JOB_CONTROL_TABLE)} WHERE job = ?`, [job])
    return rowToSettings(job, rows[0])
  } catch (err) {
    if (isMissingTable(err)) return defaults(job)
    throw err
  }
}

/** Both jobs' settings in one query (for `status`). */
export async function readAllJobSettings(rt: Runtime): Promise<Record<JobKind, JobSettings>> {
  const out: Record<JobKind, JobSettings> = { backfill: defaults('backfill'), verify: defaults('verify') }
  try {
    const [rows] = await rt.control().query<RowDataPacket[]>(`SELECT job, ${COLUMNS} FROM ${qualified(rt.config.control.database, JOB_CONTROL_TABLE)}`)
    for (const r of rows) if (r.job === 'backfill' || r.job === 'verify') out[r.job as JobKind] = rowToSettings(r.job as JobKind, r)
  } catch (err) {
    if (!isMissingTable(err)) throw err
  }
  return out
}

/** The refusal when the job tables are missing (a fleet provisioned before job control existed; no command but provision issues DDL). */
export function jobTablesMissing(rt: Runtime, cause?: unknown): ShardkitError {
  const db = rt.config.control.database
  return new ShardkitError('PRECONDITION_FAILED', `the job control tables (${JOB_CONTROL_TABLE_DEF.name}, ${JOB_PROGRESS_TABLE_DEF.name}) do not exist in ${db}; run \`shardctl provision\` (it adds them and changes nothing else)`, { database: db }, { cause })
}

/** Validates a change against the limits (library callers get the same refusals as the CLI). */
function assertChange(job: JobKind, c: SettingsChange): void {
  for (const f of ['maxRowsPerSecond', 'chunkSize', 'concurrency'] as const) {
    const v = c[f]
    if (v === undefined || v === null) continue
    const [min, max] = SETTING_LIMITS[job][f]
    if (!Number.isInteger(v) || v < min || v > max) throw new ShardkitError('USAGE', `${FLAG_OF[f]} must be a whole number from ${min} to ${max} (got ${String(v)})`, { argument: FLAG_OF[f] })
  }
}

/**
 * Applies a change in one transaction and returns the settings before and
 * after, and each field that moved (empty when the change changed nothing).
 * @throws ShardkitError `USAGE` for a value out of range, naming its flag
 */
export async function changeJobSettings(rt: Runtime, job: JobKind, change: SettingsChange, actor: string): Promise<{ before: JobSettings; after: JobSettings; changed: SettingTransition[] }> {
  assertChange(job, change)
  const t = qualified(rt.config.control.database, JOB_CONTROL_TABLE)
  const conn = await rt.control().getConnection()
  try {
    await conn.beginTransaction()
    // The row is created first so FOR UPDATE has something to lock even on the first change.
    await conn.query(`INSERT IGNORE INTO ${t} (job, paused, revision, updated_at) VALUES (?, 0, 0, UTC_TIMESTAMP(3))`, [job])
    const [rows] = await conn.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM ${t} WHERE job = ? FOR UPDATE`, [job])
    const before = rowToSettings(job, rows[0])
    const next = {
      paused: change.paused ?? before.paused,
      maxRowsPerSecond: change.maxRowsPerSecond === undefined ? before.maxRowsPerSecond : change.maxRowsPerSecond,
      chunkSize: change.chunkSize === undefined ? before.chunkSize : change.chunkSize,
      concurrency: change.concurrency === undefined ? before.concurrency : change.concurrency,
    }
    const changed: SettingTransition[] = []
    for (const f of ['paused', 'maxRowsPerSecond', 'chunkSize', 'concurrency'] as const) if (next[f] !== before[f]) changed.push({ field: f, from: before[f], to: next[f] })
    if (changed.length > 0) {
      // 0: unthrottled; 1: the same limit (keep when it began); 2: a new limit (it begins now).
      // Computed here: MySQL evaluates an UPDATE's assignments left to right, so a later one would see the new limit.
      const throttle = next.maxRowsPerSecond === null ? 0 : next.maxRowsPerSecond === before.maxRowsPerSecond ? 1 : 2
      await conn.query(
        `UPDATE ${t} SET paused = ?, max_rows_per_second = ?, chunk_size = ?, concurrency = ?, revision = revision + 1, updated_at = UTC_TIMESTAMP(3), updated_by = ?,
           paused_at = IF(?, COALESCE(paused_at, UTC_TIMESTAMP(3)), NULL),
           throttled_at = CASE ? WHEN 0 THEN NULL WHEN 1 THEN COALESCE(throttled_at, UTC_TIMESTAMP(3)) ELSE UTC_TIMESTAMP(3) END
         WHERE job = ?`,
        [next.paused ? 1 : 0, next.maxRowsPerSecond, next.chunkSize, next.concurrency, actor.slice(0, 128), next.paused ? 1 : 0, throttle, job],
      )
    }
    const [after] = await conn.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM ${t} WHERE job = ?`, [job])
    await conn.commit()
    return { before, after: rowToSettings(job, after[0]), changed }
  } catch (err) {
    await conn.rollback().catch(() => undefined)
    throw isMissingTable(err) ? jobTablesMissing(rt, err) : err
  } finally {
    conn.release()
  }
}
