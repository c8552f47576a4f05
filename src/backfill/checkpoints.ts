/**
 * Backfill progress kept in the control database, one row per dimension:
 * the last legacy primary key whose chunk is committed in every target.
 * Saved only after the targets commit, so a resume never leaves a gap; the
 * copy is idempotent, so re-copying the last chunk after a crash is harmless.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { qualified } from '../runtime/mysql.js'
import type { TableDef } from '../control/tables.js'

export const CHECKPOINT_TABLE = 'backfill_checkpoint'

/** The control table (registered in CONTROL_TABLES). */
export const CHECKPOINT_TABLE_DEF: TableDef = {
  name: CHECKPOINT_TABLE,
  owner: 'backfill',
  ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, CHECKPOINT_TABLE)} (
  dimension VARCHAR(16) NOT NULL,
  state VARCHAR(16) NOT NULL,
  last_pk BIGINT NULL,
  rows_copied BIGINT NOT NULL DEFAULT 0,
  started_at DATETIME(3) NOT NULL,
  updated_at DATETIME(3) NOT NULL,
  completed_at DATETIME(3) NULL,
  PRIMARY KEY (dimension)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
}

export type CheckpointState = 'running' | 'complete'

export interface Checkpoint {
  readonly dimension: string
  readonly state: CheckpointState
  /** Last copied primary key (decimal string), null before the first chunk. */
  readonly lastPk: string | null
  readonly rowsCopied: number
  readonly startedAt: string
  readonly updatedAt: string
  readonly completedAt: string | null
}

export async function readCheckpoints(control: Pool, database: string): Promise<Map<string, Checkpoint>> {
  const [rows] = await control.query<RowDataPacket[]>(
    `SELECT dimension, state, last_pk, rows_copied, started_at, updated_at, completed_at FROM ${qualified(database, CHECKPOINT_TABLE)}`,
  )
  const out = new Map<string, Checkpoint>()
  for (const r of rows) {
    out.set(r.dimension, {
      dimension: r.dimension,
      state: r.state,
      lastPk: r.last_pk === null ? null : String(r.last_pk),
      rowsCopied: Number(r.rows_copied),
      startedAt: r.started_at,
      updatedAt: r.updated_at,
      completedAt: r.completed_at,
    })
  }
  return out
}

/** Starts (or restarts) a dimension's checkpoint. */
export async function resetCheckpoint(control: Pool, database: string, dimension: string): Promise<void> {
  await control.query(
    `REPLACE INTO ${qualified(database, CHECKPOINT_TABLE)} (dimension, state, last_pk, rows_copied, started_at, updated_at, completed_at)
     VALUES (?, 'running', NULL, 0, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), NULL)`,
    [dimension],
  )
}

/** Records a committed chunk for the given dimensions. */
export async function saveCheckpoint(control: Pool, database: string, dimensions: readonly string[], lastPk: string, rows: number): Promise<void> {
  await control.query(
    `UPDATE ${qualified(database, CHECKPOINT_TABLE)} SET last_pk = ?, rows_copied = rows_copied + ?, updated_at = UTC_TIMESTAMP(3) WHERE dimension IN (?)`,
    [lastPk, rows, dimensions],
  )
}

export async function completeCheckpoint(control: Pool, database: string, dimensions: readonly string[]): Promise<void> {
  await control.query(
    `UPDATE ${qualified(database, CHECKPOINT_TABLE)} SET state = 'complete', updated_at = UTC_TIMESTAMP(3), completed_at = UTC_TIMESTAMP(3) WHERE dimension IN (?)`,
    [dimensions],
  )
}
