/**
 * The two control tables of job control (registered in CONTROL_TABLES):
 *
 * - `shardkit_job_control`, one row per job kind (`backfill`, `verify`): the
 *   operator's settings (paused, rows/s, chunk size, concurrency), written by
 *   `shardctl backfill|verify pause|resume|throttle` from any machine and read
 *   by the running job between chunks. `revision` goes up by one per change,
 *   so a job sees that something changed without comparing every field.
 * - `shardkit_job_progress`, one row per job kind: what the running (or last)
 *   job reports between chunks: who runs it, exact rows done and total (from
 *   the key range and the checkpoint, never estimates), its live settings,
 *   and recent (time, rows) samples from which `status` derives the rate and
 *   the ETA. Times are the control server's UTC clock.
 */
import type { TableDef } from '../control/tables.js'
import { qualified } from '../runtime/mysql.js'

export const JOB_CONTROL_TABLE = 'shardkit_job_control'
export const JOB_PROGRESS_TABLE = 'shardkit_job_progress'

/** Settings the operator changes while a job runs. */
export const JOB_CONTROL_TABLE_DEF: TableDef = {
  name: JOB_CONTROL_TABLE,
  owner: 'jobs',
  ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, JOB_CONTROL_TABLE)} (
  job VARCHAR(16) NOT NULL,
  paused TINYINT(1) NOT NULL DEFAULT 0,
  max_rows_per_second BIGINT NULL,
  chunk_size INT NULL,
  concurrency INT NULL,
  revision BIGINT NOT NULL DEFAULT 0,
  updated_at DATETIME(3) NOT NULL,
  updated_by VARCHAR(128) NOT NULL DEFAULT '',
  paused_at DATETIME(3) NULL,
  throttled_at DATETIME(3) NULL,
  PRIMARY KEY (job)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
}

/** The running (or last) job's report, written between chunks. */
export const JOB_PROGRESS_TABLE_DEF: TableDef = {
  name: JOB_PROGRESS_TABLE,
  owner: 'jobs',
  ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, JOB_PROGRESS_TABLE)} (
  job VARCHAR(16) NOT NULL,
  run_id CHAR(36) NOT NULL,
  scope VARCHAR(32) NOT NULL,
  state VARCHAR(16) NOT NULL,
  host VARCHAR(128) NOT NULL,
  pid INT NOT NULL,
  started_at DATETIME(3) NOT NULL,
  updated_at DATETIME(3) NOT NULL,
  finished_at DATETIME(3) NULL,
  rows_done BIGINT NOT NULL DEFAULT 0,
  rows_total BIGINT NULL,
  chunks BIGINT NOT NULL DEFAULT 0,
  chunk_size INT NULL,
  concurrency INT NULL,
  max_rows_per_second BIGINT NULL,
  samples JSON NOT NULL,
  message VARCHAR(512) NULL,
  PRIMARY KEY (job)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
}
