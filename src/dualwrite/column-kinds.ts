/**
 * What a copy tool must know of each column's type to move its value without
 * changing a byte (pure, but for {@link readColumnKinds}).
 *
 * mysql2 reads rows over the text protocol, where the server prints each
 * value. Two types do not survive that print:
 * - FLOAT is printed with 6 significant digits (`1.0000001192` prints `1`):
 *   it is read as `col + 0E0`, the exact float widened to a DOUBLE, which
 *   prints its shortest round-trip digits; bound back into the FLOAT column
 *   it rounds to the same float. (DOUBLE already prints round-trip digits.)
 * - GEOMETRY is parsed by mysql2 into `{x, y}` objects that lose the SRID and
 *   the shape: it is read as `CAST(col AS BINARY)`, the server's own bytes
 *   (SRID + WKB), and bound back as bytes.
 * Binary strings, BLOBs and BIT arrive as Buffers and are bound as bytes.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { quoteIdent } from '../runtime/mysql.js'

/** How a column's value travels. */
export type ColumnKind = 'float' | 'geometry' | 'bytes' | 'number' | 'text' | 'timestamp' | 'other'

const GEOMETRY = new Set(['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'geomcollection'])
const BYTES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit'])
const NUMBER = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'double', 'real', 'year'])
const TEXT = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'json', 'enum', 'set'])

/** The kind of an information_schema `DATA_TYPE`. */
export function kindOfType(dataType: string): ColumnKind {
  const t = dataType.toLowerCase()
  if (t === 'float') return 'float'
  if (GEOMETRY.has(t)) return 'geometry'
  if (BYTES.has(t)) return 'bytes'
  if (NUMBER.has(t)) return 'number'
  if (TEXT.has(t)) return 'text'
  if (t === 'timestamp') return 'timestamp'
  return 'other'
}

/** Column name -> kind, for the columns whose read differs from a plain column reference. */
export type ReadKinds = Readonly<Record<string, ColumnKind>>

/**
 * The expression that reads `column` exactly (see the file head), aliased to
 * its own name when it is not a plain reference.
 * @param table an optional table alias (`o`) to qualify the column with
 */
export function readExpression(column: string, kind: ColumnKind | undefined, table?: string): string {
  const ref = table ? `${quoteIdent(table)}.${quoteIdent(column)}` : quoteIdent(column)
  if (kind === 'float') return `(${ref} + 0E0) AS ${quoteIdent(column)}`
  if (kind === 'geometry') return `CAST(${ref} AS BINARY) AS ${quoteIdent(column)}`
  return table ? `${ref} AS ${quoteIdent(column)}` : ref
}

/** Only the kinds whose read is not a plain column reference (what a RowShape carries). */
export function exactReads(kinds: Readonly<Record<string, ColumnKind>>): ReadKinds {
  return Object.fromEntries(Object.entries(kinds).filter(([, k]) => k === 'float' || k === 'geometry'))
}

/** `SELECT` list of `columns`, each read exactly. */
export function selectListSql(columns: readonly string[], kinds: ReadKinds | undefined, table?: string): string {
  return columns.map((c) => readExpression(c, kinds?.[c], table)).join(', ')
}

/** A table's columns in order with their kinds, from information_schema. */
export async function readColumnKinds(pool: Pool, database: string, table: string): Promise<{ columns: string[]; kinds: Record<string, ColumnKind> }> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS c, DATA_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [database, table],
  )
  const kinds: Record<string, ColumnKind> = {}
  for (const r of rows) kinds[String(r.c)] = kindOfType(String(r.t))
  return { columns: rows.map((r) => String(r.c)), kinds }
}
