/**
 * Tombstones: `shardkit_tombstone` in every database that holds a copy of
 * the orders table (legacy, and every user and merchant shard database).
 *
 * A row (order_id, tbl, version) says "no copy of this order below `version`
 * may live in table `tbl` of this database". Every copy statement checks it
 * under a shared lock, so a copy that arrives late (a statement that a
 * stalled server ran after its client gave up, a backfill chunk read before
 * a delete, a replay of an older image) can never bring an order back:
 *
 * - a delete of the order writes {@link DEAD} (ids are never reused, so no
 *   version of it may live there again), on the primary in the delete's own
 *   transaction and on every copy with the copy's delete;
 * - moving the merchant copy away at version V writes V + 1 at the old
 *   merchant table: a later move back writes a version above it and is let in.
 *
 * The tombstone is written before the row is deleted, in one transaction, so
 * a late upsert that read "no tombstone" holds its shared lock on that gap
 * until it commits, and the tombstone insert (and the delete after it) waits
 * for it: the delete always lands last. Tombstones stay; `pruneTombstones`
 * removes those older than a horizon after which nothing can arrive late.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { TableDef } from '../control/tables.js'
import { qualified } from '../runtime/mysql.js'

/** The tombstone table's name in every database holding order copies. */
export const TOMBSTONE_TABLE = 'shardkit_tombstone'

/** The version of a delete's tombstone: no copy of that order may ever live there again (BIGINT UNSIGNED max). */
export const DEAD = '18446744073709551615'

/** The DDL of the tombstone table (keys fit any signed or unsigned 64-bit order id). */
export const TOMBSTONE_TABLE_DEF: TableDef = {
  name: TOMBSTONE_TABLE,
  owner: 'dualwrite',
  // (order_id, tbl) first so a lookup by order ids alone (the backfill's chunk check) locks
  // only those ids' ranges, never the whole table.
  ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, TOMBSTONE_TABLE)} (
  order_id DECIMAL(20,0) NOT NULL,
  tbl VARCHAR(64) NOT NULL,
  version BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (order_id, tbl)
) ENGINE=InnoDB DEFAULT CHARSET=ascii`,
}

/**
 * `INSERT` of a tombstone that only raises the version (bind order id, table, version).
 * Written before the row's delete in the same transaction.
 */
export function tombstoneUpsertSql(database: string): string {
  return `INSERT INTO ${qualified(database, TOMBSTONE_TABLE)} (order_id, tbl, version) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version))`
}

/** The condition "no tombstone of this order in this table is above the copy's version" (bind order id, table, version), read under a shared lock. */
export function noTombstoneAbove(database: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${qualified(database, TOMBSTONE_TABLE)} WHERE order_id = ? AND tbl = ? AND version > ? LOCK IN SHARE MODE)`
}

/** The condition "this order was never deleted from this table" (bind order id, table): the primary's insert check. */
export function neverDeleted(database: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${qualified(database, TOMBSTONE_TABLE)} WHERE order_id = ? AND tbl = ? AND version = ${DEAD} LOCK IN SHARE MODE)`
}

/**
 * The ids among `ids` that a tombstone keeps out of `tables` at their
 * versions, read under a shared lock on the caller's open transaction (the
 * backfill's chunk), so no delete can slip a tombstone in before it commits.
 */
export async function tombstonedIds(
  conn: { query: (sql: string, values: unknown[]) => Promise<unknown> },
  database: string,
  ids: readonly string[],
): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>()
  if (ids.length === 0) return out
  const [rows] = (await conn.query(`SELECT order_id, tbl, version FROM ${qualified(database, TOMBSTONE_TABLE)} WHERE order_id IN (?) LOCK IN SHARE MODE`, [ids])) as [RowDataPacket[]]
  for (const r of rows) {
    const id = String(r.order_id)
    let m = out.get(id)
    if (!m) out.set(id, (m = new Map()))
    m.set(String(r.tbl), String(r.version))
  }
  return out
}

/** True when `version` (a decimal string or number) is below the tombstone version `t` (both unsigned 64-bit). */
export function belowTombstone(version: string | number, t: string): boolean {
  return BigInt(version) < BigInt(t)
}
