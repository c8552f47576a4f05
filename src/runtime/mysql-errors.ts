/**
 * Classifies mysql2 errors by `code` / `errno`, never by message text.
 */

/** ER_NO_SUCH_TABLE / ER_BAD_DB_ERROR: the table or database is not provisioned yet. */
export function isMissingTable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code
  return code === 'ER_NO_SUCH_TABLE' || code === 'ER_BAD_DB_ERROR'
}

/** What an operator can do about a driver error the library did not wrap, by its code. */
const DRIVER_ERRORS: Readonly<Record<string, string>> = {
  ER_CON_COUNT_ERROR: 'a MySQL server refused a new connection: its max_connections is reached (other clients hold them). Raise max_connections on that server or stop what holds the connections, then run the same command again (long jobs resume from their checkpoint)',
  ER_TOO_MANY_USER_CONNECTIONS: "a MySQL server refused a new connection: the account's max_user_connections is reached. Raise it or run fewer shardctl jobs at once, then run the same command again",
  ER_ACCESS_DENIED_ERROR: 'a MySQL server refused the login: check the user and password in the URL of the host it names in the config (hosts, legacy.url or control.url)',
  ECONNREFUSED: 'a server refused the connection: check that MySQL and Redis are running at the addresses in the config, then run the same command again',
  ETIMEDOUT: 'a connection to a server timed out: check the network and that the server is not paused or overloaded, then run the same command again',
  ECONNRESET: 'a server closed the connection mid-request (restarted, killed the session, or a proxy cut it): run the same command again',
  PROTOCOL_CONNECTION_LOST: 'a MySQL server closed the connection mid-request (restarted, killed the session, or a proxy cut it): run the same command again',
  ER_LOCK_WAIT_TIMEOUT: 'a statement waited too long for a row lock held by another session: find the long transaction (SHOW ENGINE INNODB STATUS), then run the same command again',
  ER_LOCK_DEADLOCK: 'a statement was chosen as a deadlock victim: run the same command again',
  ER_OPTION_PREVENTS_STATEMENT: 'a MySQL server is read-only (a replica, or read_only is set): point the config at the primary',
}

/**
 * The operator's sentence for a raw driver error (`code` from mysql2 or
 * node), or undefined when the code is not one we know. The CLI prints it in
 * place of "unexpected error".
 */
export function describeDriverError(err: unknown): { code: string; message: string } | undefined {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return undefined
  const advice = DRIVER_ERRORS[code]
  return advice ? { code, message: `${advice} (${code})` } : undefined
}
