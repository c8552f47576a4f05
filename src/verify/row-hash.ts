/**
 * The per-row hash computed on the servers (pure SQL text from validated
 * identifiers), and its 64-bit form that chunk checksums XOR together.
 *
 * The encoding is injective over the whole row: every string column adds its
 * byte length before its value (so a `#` inside a value cannot shift the
 * columns), and NULL is marked (so NULL differs from '' and a value that
 * moves into the neighbouring column, leaving a NULL behind, changes the
 * hash: the case a plain `CONCAT_WS` misses because it skips NULLs). A
 * nullable string's length is -1 when it is NULL (CONCAT_WS then skips the
 * value itself), which marks it in the same part; other nullable columns add
 * an `ISNULL` marker at the end. One part fewer per nullable string column
 * made the scan about 8% faster than separate markers (250k cached rows). Numbers and times cannot contain the separator and go in
 * as they are; that keeps the expression short, which is most of its cost.
 *
 * The 64-bit value, two flavours:
 * - `crc-pk` (default; MySQL and MariaDB): `CRC32(s) * (CRC32(pk) | 1)`.
 *   CRC32 alone is linear over GF(2), so an XOR of row CRCs can cancel out:
 *   two orders whose amounts are swapped leave the XOR unchanged whenever
 *   the two rows have the same shape (the ShardingSphere-style miss). Each
 *   row's CRC is multiplied by an odd number drawn from its own key, which
 *   is not linear over GF(2) and differs from row to row, so changes in two
 *   rows no longer cancel; a change in one row changes its product whenever
 *   it changes its CRC (multiplying by the same odd factor is one-to-one).
 *   It costs about 15% more than the plain CRC32 scan; MD5 costs 80% more.
 * - `md5`: the first 64 bits of `MD5(s)`, for those who want a cryptographic hash.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import { quoteIdent } from '../runtime/mysql.js'

export interface ColumnInfo {
  readonly name: string
  readonly nullable: boolean
  /** A type whose text could contain the separator (strings, JSON, blobs, enums). */
  readonly stringish: boolean
}

export type HashFlavor = 'crc-pk' | 'md5'

const NON_STRING = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'float', 'double', 'real', 'bit', 'date', 'datetime', 'timestamp', 'time', 'year'])

/** A table's columns in order, with what the hash needs to know of them. */
export async function readColumnInfo(pool: Pool, database: string, table: string): Promise<ColumnInfo[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS c, IS_NULLABLE AS n, DATA_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [database, table],
  )
  if (rows.length === 0) throw new ShardkitError('PRECONDITION_FAILED', `the table ${database}.${table} does not exist; check the config`, { database, table })
  return rows.map((r) => ({ name: r.c as string, nullable: r.n === 'YES', stringish: !NON_STRING.has(String(r.t).toLowerCase()) }))
}

/** The injective text of a row: `CONCAT_WS('#', ...)`. */
export function rowTextSql(columns: readonly ColumnInfo[]): string {
  const parts: string[] = []
  for (const c of columns) {
    const q = quoteIdent(c.name)
    // A nullable string's length is -1 for NULL: the marker and the length in one part.
    if (c.stringish) parts.push(c.nullable ? `IFNULL(OCTET_LENGTH(${q}),-1)` : `OCTET_LENGTH(${q})`)
    parts.push(q)
  }
  for (const c of columns) if (c.nullable && !c.stringish) parts.push(`ISNULL(${quoteIdent(c.name)})`)
  return `CONCAT_WS('#',${parts.join(',')})`
}

/** The row's 64-bit hash as a BIGINT UNSIGNED expression. */
export function rowHashSql(columns: readonly ColumnInfo[], flavor: HashFlavor, primaryKey: string): string {
  const text = rowTextSql(columns)
  return flavor === 'crc-pk' ? `(CRC32(${text}) * (CRC32(${quoteIdent(primaryKey)}) | 1))` : `CAST(CONV(LEFT(MD5(${text}),16),16,10) AS UNSIGNED)`
}
