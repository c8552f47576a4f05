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
  {
    name: 'order_lookup',
    owner: 'router',
    // Legacy order id -> user id, for routing ids at or below the legacy ceiling.
    // Filled by backfill and by dual writes; read by the router.
    ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, 'order_lookup')} (
  order_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  merchant_id BIGINT NOT NULL,
  PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  },
]

/** Tables in every database that may be a write primary (legacy and user-dimension databases). */
export const PRIMARY_TABLES: readonly TableDef[] = []
