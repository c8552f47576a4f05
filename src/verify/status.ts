/**
 * Verify runs recorded in the control database: what `cutover` guards read
 * (`readLastVerify`) and what `cutover status` shows.
 */
import { randomUUID } from 'node:crypto'
import type { RowDataPacket } from 'mysql2/promise'
import type { TableDef } from '../control/tables.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { isMissingTable } from '../runtime/mysql-errors.js'

export const VERIFY_RUN_TABLE = 'verify_run'

export const VERIFY_RUN_TABLE_DEF: TableDef = {
  name: VERIFY_RUN_TABLE,
  owner: 'verify',
  ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, VERIFY_RUN_TABLE)} (
  run_id CHAR(36) NOT NULL,
  dimension VARCHAR(16) NOT NULL,
  since_time VARCHAR(40) NULL,
  started_at DATETIME(3) NOT NULL,
  finished_at DATETIME(3) NOT NULL,
  clean TINYINT(1) NOT NULL,
  differences BIGINT NOT NULL,
  rows_compared BIGINT NOT NULL,
  summary JSON NOT NULL,
  PRIMARY KEY (run_id),
  KEY idx_finished (finished_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
}

export interface VerifySummary {
  readonly runId: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly clean: boolean
  readonly differences: number
  readonly since: string | null
  readonly dimension: 'user' | 'merchant' | 'all'
  /** Set by `readLastFullVerify`: a run that finished after this one found differences. */
  readonly laterDifferences?: boolean
}

/**
 * Records a finished run; returns its id. `summary` holds counts and keys
 * only. `startedAt` must be the control database's time at the start
 * (`controlNow`); the finish time is taken from the same clock here.
 */
export async function recordVerifyRun(
  rt: Runtime,
  run: { dimension: string; since: string | null; startedAt: string; clean: boolean; differences: number; rowsCompared: number; summary: unknown },
): Promise<string> {
  const id = randomUUID()
  await rt.control().query(
    `INSERT INTO ${qualified(rt.config.control.database, VERIFY_RUN_TABLE)} (run_id, dimension, since_time, started_at, finished_at, clean, differences, rows_compared, summary)
     VALUES (?, ?, ?, ?, UTC_TIMESTAMP(3), ?, ?, ?, ?)`,
    [id, run.dimension, run.since, run.startedAt.replace('T', ' ').replace('Z', ''), run.clean ? 1 : 0, run.differences, run.rowsCompared, JSON.stringify(run.summary)],
  )
  return id
}

function summaryOf(r: RowDataPacket): VerifySummary {
  const iso = (s: string) => new Date(s.replace(' ', 'T') + 'Z').toISOString()
  return {
    runId: r.run_id,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    clean: Number(r.clean) === 1,
    differences: Number(r.differences),
    since: r.since_time,
    dimension: r.dimension,
  }
}

async function lastRun(rt: Runtime, where: string, params: unknown[] = []): Promise<VerifySummary | null> {
  let rows: RowDataPacket[]
  try {
    ;[rows] = await rt.control().query<RowDataPacket[]>(
      `SELECT run_id, dimension, since_time, started_at, finished_at, clean, differences FROM ${qualified(rt.config.control.database, VERIFY_RUN_TABLE)} ${where} ORDER BY finished_at DESC, started_at DESC LIMIT 1`,
      params,
    )
  } catch (err) {
    if (isMissingTable(err)) return null
    throw err
  }
  return rows[0] ? summaryOf(rows[0]) : null
}

/** The most recent verify run of any kind (full or `--since`), or null when none ran (or the table is not provisioned). Ordered by the control database's clock. */
export async function readLastVerify(rt: Runtime): Promise<VerifySummary | null> {
  return lastRun(rt, '')
}

/**
 * What the cutover's `verify-clean` guard reads: the most recent full run
 * (all dimensions, no `--since`), and whether any run that finished after it
 * found differences. A `--since` run compares only rows changed after a
 * time, so it never stands in for a full one.
 */
export async function readLastFullVerify(rt: Runtime): Promise<(VerifySummary & { laterDifferences: boolean }) | null> {
  const full = await lastRun(rt, `WHERE since_time IS NULL AND dimension = 'all'`)
  if (!full) return null
  const later = await lastRun(rt, 'WHERE clean = 0 AND finished_at > ?', [full.finishedAt.replace('T', ' ').replace('Z', '')])
  return { ...full, laterDifferences: later !== null }
}
