/**
 * The per-row hash computed on the servers (pure SQL text from validated
 * identifiers). Every column contributes a NULL marker, its byte length and
 * its value, so NULL differs from '' and a value that moves into the
 * neighbouring column (leaving a NULL behind) changes the hash: the case a
 * `CONCAT_WS` row hash misses because CONCAT_WS skips NULLs.
 */
import { quoteIdent } from '../runtime/mysql.js'

/** `MD5(CONCAT_WS('#', ISNULL(c), OCTET_LENGTH(c), c, ...))` over all columns. */
export function rowHashSql(columns: readonly string[]): string {
  const parts = columns.map((c) => `ISNULL(${quoteIdent(c)}),OCTET_LENGTH(${quoteIdent(c)}),${quoteIdent(c)}`)
  return `MD5(CONCAT_WS('#',${parts.join(',')}))`
}
