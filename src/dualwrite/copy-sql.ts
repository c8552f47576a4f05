/**
 * The SQL of one copy into a secondary (pure): every guard a late or stale
 * copy must pass, in the statement itself, so the database decides:
 *
 * - version: an upsert never replaces a newer row (`IF(VALUES(version) >= version …)`),
 *   a delete removes only rows below its tombstone version;
 * - tombstone: an upsert never brings back a copy below the table's
 *   tombstone for the order (tombstones.ts), and a delete writes its tombstone first;
 * - deadline: nothing happens if the server starts the statement after the
 *   deadline its client bound (copy-bounds.ts).
 *
 * No write fence: with these guards a copy that lands in a side that has
 * since become the write primary can only write what that primary already
 * holds or lacks (an older version, or one below a tombstone, changes
 * nothing), so a switch need not stop copies, and copies never wait on a
 * switch. The fence guards the primary's own writes (fence.ts).
 *
 * Column and table names come from the validated topology and the legacy
 * table's own definition; every value is a bound parameter.
 */
import { qualified, quoteIdent } from '../runtime/mysql.js'
import type { Location } from './placement.js'
import { VERSION_COLUMN, type RowShape } from './row-sql.js'
import { noTombstoneAbove, TOMBSTONE_TABLE } from './tombstones.js'

export interface CopySqlOptions {
  /** Repair: overwrite whatever version the copy holds (the caller holds the primary's row lock). */
  readonly force?: boolean
}

/**
 * The guarded upsert of a full row. Bind, in order: the row's values
 * (`shape.columns`), the deadline, then order id, table name and the row's
 * version (the tombstone check).
 */
export function guardedUpsertSql(shape: RowShape, l: Location, o: CopySqlOptions = {}): string {
  const v = quoteIdent(VERSION_COLUMN)
  const cols = shape.columns.map(quoteIdent)
  const sets = shape.columns
    .filter((c) => c !== shape.primaryKey && c !== VERSION_COLUMN)
    .map((c) => (o.force ? `${quoteIdent(c)} = VALUES(${quoteIdent(c)})` : `${quoteIdent(c)} = IF(VALUES(${v}) >= ${v}, VALUES(${quoteIdent(c)}), ${quoteIdent(c)})`))
  // `version` last: MySQL applies the assignments left to right, and the IFs above read the old one.
  sets.push(o.force ? `${v} = VALUES(${v})` : `${v} = GREATEST(${v}, VALUES(${v}))`)
  const conds = ['UTC_TIMESTAMP(6) < ?', noTombstoneAbove(l.database)]
  return `INSERT INTO ${qualified(l.database, l.table)} (${cols.join(', ')}) SELECT ${cols.map(() => '?').join(', ')} FROM DUAL WHERE ${conds.join(' AND ')} ON DUPLICATE KEY UPDATE ${sets.join(', ')}`
}

/** The parameters of {@link guardedUpsertSql}. */
export function guardedUpsertParams(values: readonly unknown[], deadline: string, orderId: string, l: Location, version: unknown): unknown[] {
  return [...values, deadline, orderId, l.table, String(version)]
}

/** A tombstone raised to at least the bound version, unless past the deadline (bind order id, table, version, deadline). */
export function tombstoneBeforeDeleteSql(l: Location): string {
  return `INSERT INTO ${qualified(l.database, TOMBSTONE_TABLE)} (order_id, tbl, version) SELECT ?, ?, CAST(? AS UNSIGNED) FROM DUAL WHERE UTC_TIMESTAMP(6) < ? ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version))`
}

/** The copy's delete: rows below the tombstone version only, unless past the deadline (bind order id, version, deadline). */
export function deleteBelowSql(shape: RowShape, l: Location, o: { force?: boolean } = {}): string {
  const below = o.force ? '' : ` AND ${quoteIdent(VERSION_COLUMN)} < CAST(? AS UNSIGNED)`
  return `DELETE FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(shape.primaryKey)} = ?${below} AND UTC_TIMESTAMP(6) < ?`
}

/**
 * What a copy left behind, for a statement that changed nothing (bind order
 * id, order id, table, deadline): the target's version, the tombstone's
 * version, and whether the server is still before the deadline.
 */
export function copyOutcomeSql(shape: RowShape, l: Location): string {
  return `SELECT (SELECT ${quoteIdent(VERSION_COLUMN)} FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(shape.primaryKey)} = ?) AS v,
    (SELECT version FROM ${qualified(l.database, TOMBSTONE_TABLE)} WHERE order_id = ? AND tbl = ?) AS tv,
    UTC_TIMESTAMP(6) < ? AS intime`
}
