/**
 * SQL text and values for copying order rows between sides (pure). Column
 * names come from the legacy table's own definition (information_schema), and
 * every table name from the validated topology, so quoting is enough; values
 * are always bound parameters.
 */
import { ShardkitError } from '../errors.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import type { Location } from './placement.js'

/** A legacy-shaped order row; ids and DATETIMEs as strings. */
export type OrderRow = Record<string, string | number | null>

/** The column every write through the store increases; replays and backfill compare it. */
export const VERSION_COLUMN = 'version'
/** Set by the store on insert when the caller leaves them out, and on every update. */
export const CREATED_COLUMN = 'created_at'
export const UPDATED_COLUMN = 'updated_at'
/** The cutover's fence table in every primary-capable database (src/cutover/fence.ts). */
export const FENCE_TABLE = 'shardkit_fence'

/** The legacy table's columns and its key columns, from the config. */
export interface RowShape {
  readonly columns: readonly string[]
  readonly primaryKey: string
  readonly userColumn: string
  readonly merchantColumn: string
}

/** `SELECT <all columns> FROM t WHERE pk = ?`, with an optional lock clause. */
export function selectByIdSql(shape: RowShape, l: Location, lock: '' | 'share' | 'update' = ''): string {
  const suffix = lock === 'share' ? ' LOCK IN SHARE MODE' : lock === 'update' ? ' FOR UPDATE' : ''
  return `SELECT ${shape.columns.map(quoteIdent).join(', ')} FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(shape.primaryKey)} = ?${suffix}`
}

/** `INSERT INTO t (<the row's columns>) VALUES (...)`: a plain insert; a duplicate key is an error. */
export function insertSql(columns: readonly string[], l: Location): string {
  return `INSERT INTO ${qualified(l.database, l.table)} (${columns.map(quoteIdent).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`
}

/** `UPDATE t SET <columns> WHERE pk = ?` for the full after-image. */
export function updateSql(shape: RowShape, l: Location): string {
  const cols = shape.columns.filter((c) => c !== shape.primaryKey)
  return `UPDATE ${qualified(l.database, l.table)} SET ${cols.map((c) => `${quoteIdent(c)} = ?`).join(', ')} WHERE ${quoteIdent(shape.primaryKey)} = ?`
}

/** `DELETE FROM t WHERE pk = ?` */
export function deleteSql(shape: RowShape, l: Location): string {
  return `DELETE FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(shape.primaryKey)} = ?`
}

/** A value as it is bound: JSON columns read back as objects on MySQL are written as JSON text. */
export function bindValue(v: unknown): string | number | null {
  if (v === null || v === undefined) return null
  if (typeof v === 'string' || typeof v === 'number') return v
  if (typeof v === 'bigint' || typeof v === 'boolean') return String(v)
  return JSON.stringify(v)
}

/** The values of `columns` in `row`, in order. */
export function valuesOf(row: OrderRow, columns: readonly string[]): Array<string | number | null> {
  return columns.map((c) => bindValue(row[c]))
}

/** A row read back from mysql2 as an {@link OrderRow} (numbers stay numbers, objects become JSON text). */
export function toOrderRow(raw: Record<string, unknown>, columns: readonly string[]): OrderRow {
  const out: OrderRow = {}
  for (const c of columns) out[c] = bindValue(raw[c])
  return out
}

/** Null-safe equality of two rows over `columns` (values compared as text). Returns the differing column names. */
export function differingColumns(a: OrderRow, b: OrderRow, columns: readonly string[]): string[] {
  const norm = (v: string | number | null | undefined) => (v === null || v === undefined ? null : String(v))
  return columns.filter((c) => norm(a[c]) !== norm(b[c]))
}

/** `YYYY-MM-DD HH:MM:SS.mmm` in UTC, the DATETIME(3) text the store writes. */
export function formatDateTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 23)
}

/**
 * Checks the column names of a caller's row or patch against the table.
 * @throws ShardkitError `USAGE` naming the unknown column
 */
export function assertKnownColumns(shape: RowShape, row: OrderRow, what: string): void {
  const known = new Set(shape.columns)
  for (const k of Object.keys(row)) {
    if (!known.has(k)) {
      throw new ShardkitError('USAGE', `${what} has a column "${k.slice(0, 64)}" that the legacy table does not have; use one of: ${shape.columns.join(', ')}`, { argument: what })
    }
  }
}
