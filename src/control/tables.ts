/**
 * Every table shardkit keeps for itself, in one place, so that `provision`
 * creates them all and each module's owner can see the others'.
 *
 * - control tables live in the control database (`config.control.database`);
 * - primary tables live in every database that can be a write primary: the
 *   legacy database and each user-dimension database. They must be written in
 *   the same transaction as the order row (journal, outbox) or guard it (fence).
 *
 * DDL is `CREATE TABLE IF NOT EXISTS` with the database qualified; names are
 * fixed, databases come from the validated topology.
 */
import { qualified } from '../runtime/mysql.js'
import { CHECKPOINT_TABLE_DEF } from '../backfill/checkpoints.js'
import { VERIFY_RUN_TABLE_DEF } from '../verify/status.js'
import { TOMBSTONE_TABLE_DEF } from '../dualwrite/tombstones.js'
import { RUN_LOCK_TABLE_DEF } from '../cutover/run-lock.js'
import { JOB_CONTROL_TABLE_DEF, JOB_PROGRESS_TABLE_DEF } from '../jobs/tables.js'

export interface TableDef {
  /** Table name. */
  readonly name: string
  /** Which module owns it (and documents it). */
  readonly owner: string
  /** The CREATE TABLE IF NOT EXISTS statement for `database`. */
  ddl(database: string): string
}

/** Tables in the control database. */
export const CONTROL_TABLES: readonly TableDef[] = [
  CHECKPOINT_TABLE_DEF,
  VERIFY_RUN_TABLE_DEF,
  RUN_LOCK_TABLE_DEF,
  JOB_CONTROL_TABLE_DEF,
  JOB_PROGRESS_TABLE_DEF,
  {
    name: 'order_lookup',
    owner: 'router',
    // Legacy order id -> user id, for routing ids at or below the legacy ceiling.
    // Filled by backfill and by dual writes; read by the router. The keys are DECIMAL(20,0):
    // every value a BIGINT UNSIGNED or DECIMAL(20,0) key column holds (src/router/shard-function.ts).
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'order_lookup')} (
  order_id BIGINT NOT NULL,
  user_id DECIMAL(20,0) NOT NULL,
  merchant_id DECIMAL(20,0) NOT NULL,
  PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
  {
    name: 'shardkit_stage',
    owner: 'cutover',
    // The durable copy of the cutover stage (one row, id = 1); Redis holds the live copy.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_stage')} (
  id TINYINT UNSIGNED NOT NULL,
  stage VARCHAR(16) NOT NULL,
  version BIGINT NOT NULL,
  read_percent TINYINT UNSIGNED NOT NULL,
  changed_at DATETIME(3) NOT NULL,
  stage_entered_at DATETIME(3) NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
  {
    name: 'shardkit_cutover_audit',
    owner: 'cutover',
    // Append-only: one row per cutover move attempt (done, aborted, refused). Never updated.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_cutover_audit')} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at DATETIME(3) NOT NULL,
  actor VARCHAR(128) NOT NULL,
  action VARCHAR(16) NOT NULL,
  outcome VARCHAR(16) NOT NULL,
  from_stage VARCHAR(16) NOT NULL,
  from_version BIGINT NOT NULL,
  from_percent TINYINT UNSIGNED NOT NULL,
  to_stage VARCHAR(16) NULL,
  to_version BIGINT NULL,
  to_percent TINYINT UNSIGNED NULL,
  reason VARCHAR(512) NULL,
  forced TINYINT(1) NOT NULL DEFAULT 0,
  forced_guards VARCHAR(255) NOT NULL DEFAULT '',
  fence_ms INT UNSIGNED NULL,
  detail VARCHAR(1024) NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
  {
    name: 'id_worker_lease',
    owner: 'idgen',
    // One row per id-generator worker number (0..255, seeded on first use). A
    // generator takes a row by compare-and-set on `version` once `lease_expires_at`
    // (database time, UTC) has passed, renews it, and never issues an id whose
    // time is above `reserved_until_ms` (Unix ms): the next holder starts after it.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'id_worker_lease')} (
  worker_id SMALLINT UNSIGNED NOT NULL,
  owner VARCHAR(128) NOT NULL DEFAULT '',
  owner_token CHAR(32) NOT NULL DEFAULT '',
  version BIGINT UNSIGNED NOT NULL DEFAULT 0,
  lease_expires_at DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:01.000',
  reserved_until_ms BIGINT NOT NULL DEFAULT 0,
  acquired_at DATETIME(3) NULL,
  renewed_at DATETIME(3) NULL,
  released_at DATETIME(3) NULL,
  PRIMARY KEY (worker_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
  {
    name: 'shardkit_relay_lease',
    owner: 'events',
    // One row per outbox (primary name): the relay holding it, its fencing token
    // (increases on every takeover) and the expiry in database time. A standby
    // takes the row only once it expired; the holder stamps its token into the
    // outbox database (shardkit_relay_token) so a stale holder cannot mark rows.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_relay_lease')} (
  outbox VARCHAR(191) NOT NULL,
  holder VARCHAR(128) NOT NULL DEFAULT '',
  token BIGINT UNSIGNED NOT NULL DEFAULT 0,
  expires_at DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:01.000',
  acquired_at DATETIME(3) NULL,
  renewed_at DATETIME(3) NULL,
  PRIMARY KEY (outbox)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
]

/** Tables in every database that may be a write primary (legacy and user-dimension databases). */
export const PRIMARY_TABLES: readonly TableDef[] = [
  {
    name: 'shardkit_journal',
    owner: 'dualwrite',
    // One row per primary write whose secondaries are not yet known to hold the
    // primary's row: written in the primary transaction (intent), deleted once
    // every secondary holds the row. Keys only, never row data. User and merchant
    // keys are DECIMAL(20,0): every BIGINT UNSIGNED or DECIMAL(20,0) key routes.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_journal')} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  order_id BIGINT NOT NULL,
  op VARCHAR(8) NOT NULL,
  secondaries VARCHAR(32) NOT NULL,
  user_id DECIMAL(20,0) NOT NULL,
  merchant_id DECIMAL(20,0) NOT NULL,
  prev_merchant_id DECIMAL(20,0) NULL,
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  last_error VARCHAR(64) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  next_attempt_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY idx_order (order_id),
  KEY idx_next (next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
  {
    name: 'shardkit_fence',
    owner: 'cutover',
    // The write fence (one row, id = 1): every primary write transaction reads it
    // LOCK IN SHARE MODE and checks its stage version; a stage switch holds it
    // exclusively (writes wait), then opens it at the new version.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_fence')} (
  id TINYINT UNSIGNED NOT NULL,
  stage_version BIGINT NOT NULL,
  state VARCHAR(8) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB`,
  },
  {
    name: 'shardkit_outbox',
    owner: 'events',
    // Order events, appended in the primary write transaction (src/events/outbox.ts).
    // `id` is the relay's order; `stage_version` is the fence version the write
    // passed (the relay's barrier across a write flip); `published_at` is set
    // only after the broker confirmed, and published rows are pruned after the
    // retention. Ids and the change only, never order data.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_outbox')} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  event_id CHAR(36) NOT NULL,
  order_id BIGINT NOT NULL,
  user_id DECIMAL(20,0) NOT NULL,
  merchant_id DECIMAL(20,0) NOT NULL,
  type VARCHAR(16) NOT NULL,
  version BIGINT NOT NULL,
  stage_version BIGINT NOT NULL,
  occurred_at DATETIME(3) NOT NULL,
  published_at DATETIME(3) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_event (event_id),
  KEY idx_pending (published_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
  {
    name: 'shardkit_outbox_retry',
    owner: 'events',
    // Outbox events handed off by the relay but still owed to one target: a queue
    // that refused them (full, reject-publish nack), that does not exist, or '' for
    // the topic exchange when nothing was bound (src/events/outbox-retry.ts). The
    // outbox row is marked published; this row keeps it (and it is not pruned)
    // until the target confirmed it. `stage_version` orders holds across a write flip.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_outbox_retry')} (
  outbox_id BIGINT UNSIGNED NOT NULL,
  target VARCHAR(255) NOT NULL,
  order_id BIGINT NOT NULL,
  stage_version BIGINT NOT NULL,
  reason VARCHAR(16) NOT NULL,
  held_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (target, outbox_id),
  KEY idx_order (order_id, target),
  KEY idx_outbox (outbox_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
  {
    name: 'shardkit_relay_token',
    owner: 'events',
    // The fencing token of the relay allowed to mark this outbox (one row, id = 1):
    // only raised (GREATEST), and checked by the mark-published statement itself.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'shardkit_relay_token')} (
  id TINYINT UNSIGNED NOT NULL,
  token BIGINT UNSIGNED NOT NULL,
  holder VARCHAR(128) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
]

/** Tables in every database that holds a copy of the orders table (legacy and every shard database, both dimensions). */
export const ORDER_DB_TABLES: readonly TableDef[] = [TOMBSTONE_TABLE_DEF]
