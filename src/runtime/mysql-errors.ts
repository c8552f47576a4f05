/**
 * Classifies mysql2 errors by `code` / `errno`, never by message text.
 */

/** ER_NO_SUCH_TABLE / ER_BAD_DB_ERROR: the table or database is not provisioned yet. */
export function isMissingTable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return code === 'ER_NO_SUCH_TABLE' || code === 'ER_BAD_DB_ERROR'
}
