/**
 * SQL text and values for copying order rows between sides (pure). Column
 * names come from the legacy table's own definition (information_schema), and
 * every table name from the validated topology, so quoting is enough; values
 * are always bound parameters.
 */
import { ShardkitError } from '../errors.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { selectListSql, type ReadKinds } from './column-kinds.js'
import type { Location } from './placement.js'

/**
 * One column's value: ids, DECIMALs, DATETIMEs and text as strings, small
 * integers and floating point as numbers, binary strings, BLOBs, BIT and
 * GEOMETRY as the server's bytes.
 */
export type RowValue = string | number | Buffer | null

/** A legacy-shaped order row. */
export type OrderRow = Record<string, RowValue>

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
  /** Columns whose exact read is not a plain reference (FLOAT, GEOMETRY: see column-kinds.ts). */
  readonly kinds?: ReadKinds
}

/** The select list that reads every column of `shape` exactly (optionally qualified by a table alias). */
export function selectListOf(shape: RowShape, table?: string): string {
  return selectListSql(shape.columns, shape.kinds, table)
}

/** `SELECT <all columns> FROM t WHERE pk = ?`, with an optional lock clause. */
export function selectByIdSql(shape: RowShape, l: Location, lock: '' | 'share' | 'update' = ''): string {
  const suffix = lock === 'share' ? ' LOCK IN SHARE MODE' : lock === 'update' ? ' FOR UPDATE' : ''
  return `SELECT ${selectListOf(shape)} FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(shape.primaryKey)} = ?${suffix}`
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

/**
 * A value as it is bound. Bytes stay bytes (mysql2 sends a Buffer as
 * `X'..'`, never as text: a VARBINARY token, a BIT or a GEOMETRY must not
 * become `{"type":"Buffer",...}`); numbers stay numbers (JavaScript prints a
 * double's shortest round-trip digits, so a FLOAT or DOUBLE read exactly is
 * written back exactly); a Date is written as UTC text (every session is
 * UTC); other objects (a JSON column given as an object) as JSON text.
 */
export function bindValue(v: unknown): RowValue {
  if (v === null || v === undefined) return null
  if (typeof v === 'string' || typeof v === 'number') return v
  if (Buffer.isBuffer(v)) return v
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  if (typeof v === 'bigint') return String(v)
  if (typeof v === 'boolean') return v ? 1 : 0
  if (v instanceof Date) return new Date(v.getTime()).toISOString().replace('T', ' ').replace('Z', '')
  return JSON.stringify(v)
}

/** The values of `columns` in `row`, in order. */
export function valuesOf(row: OrderRow, columns: readonly string[]): RowValue[] {
  return columns.map((c) => bindValue(row[c]))
}

/** A row read back from mysql2 as an {@link OrderRow} (numbers stay numbers, bytes stay bytes). */
export function toOrderRow(raw: Record<string, unknown>, columns: readonly string[]): OrderRow {
  const out: OrderRow = {}
  for (const c of columns) out[c] = bindValue(raw[c])
  return out
}

/**
 * True when two values are the same stored value: bytes compared as bytes
 * (a string given for a binary column as its UTF-8 bytes), everything else
 * as text, null only equal to null.
 */
export function sameValue(a: RowValue | undefined, b: RowValue | undefined): boolean {
  const an = a === null || a === undefined
  const bn = b === null || b === undefined
  if (an || bn) return an && bn
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) {
    const ab = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8')
    const bb = Buffer.isBuffer(b) ? b : Buffer.from(String(b), 'utf8')
    return ab.equals(bb)
  }
  return String(a) === String(b)
}

/** Null-safe equality of two rows over `columns` ({@link sameValue}). Returns the differing column names. */
export function differingColumns(a: OrderRow, b: OrderRow, columns: readonly string[]): string[] {
  return columns.filter((c) => !sameValue(a[c], b[c]))
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
