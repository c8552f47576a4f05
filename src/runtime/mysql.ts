/**
 * mysql2 pool construction with the settings every shardkit pool needs:
 * BIGINTs and DECIMALs as exact strings, dates as the server's strings (a copy
 * tool must never shift a DATETIME through a time zone), bounded size, and
 * two session settings on every new connection, before its first query:
 * - `time_zone = '+00:00'`: a TIMESTAMP travels as text, which the server
 *   prints in the session's zone; two servers with different default zones
 *   would otherwise shift every instant they copy;
 * - `REPEATABLE READ`: the safety core's locking argument (consistent reads
 *   inside a transaction, gap locks) needs it even where a DBA set the
 *   global level to READ COMMITTED.
 * A connection whose settings fail is destroyed, never used.
 */
import mysql from 'mysql2/promise'
import type { Pool, PoolOptions } from 'mysql2/promise'

export type { Pool as MysqlPool, PoolConnection as MysqlConnection } from 'mysql2/promise'

export interface PoolSettings {
  /**
   * Default database of the pool's connections; `null` for none (server
   * pools, where the database may not exist yet); omitted: the URL's path.
   */
  readonly database?: string | null
  readonly connectionLimit?: number
  readonly connectTimeoutMs?: number
}

/** Creates a pool for a `mysql://` URL. The caller owns it and must `end()` it. */
export function createMysqlPool(url: string, settings: PoolSettings = {}): Pool {
  const u = new URL(url)
  const opts: PoolOptions = {
    host: u.hostname,
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    database: settings.database === null ? undefined : (settings.database ?? (u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : undefined)),
    connectionLimit: settings.connectionLimit ?? 10,
    maxIdle: settings.connectionLimit ?? 10,
    idleTimeout: 60_000,
    connectTimeout: settings.connectTimeoutMs ?? 5_000,
    waitForConnections: true,
    queueLimit: 0,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    decimalNumbers: false,
    timezone: 'Z',
    charset: 'utf8mb4_general_ci',
    multipleStatements: false,
    enableKeepAlive: true,
    // JSON columns come back as the server's exact text: a copy or checksum
    // must never re-serialise row data (key order and spacing would change).
    jsonStrings: true,
  }
  const socket = u.searchParams.get('socket')
  if (socket) opts.socketPath = socket
  const pool = mysql.createPool(opts)
  // The promise pool re-emits the core pool's event with the core (callback) connection.
  pool.on('connection', (c) => setUpSession(c as unknown as CoreConnection))
  return pool
}

/** What {@link createMysqlPool} runs on each new connection, in order (the same on every dialect). */
export const SESSION_SETUP: readonly string[] = ["SET SESSION time_zone = '+00:00'", 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ']

/**
 * Queues the session settings on a new connection. The pool emits
 * 'connection' before it hands the connection out, and a connection runs its
 * commands in order, so they precede the caller's first query.
 */
interface CoreConnection {
  query(sql: string, cb: (err: unknown) => void): unknown
  destroy(): void
}

function setUpSession(conn: CoreConnection): void {
  for (const sql of SESSION_SETUP) {
    conn.query(sql, (err) => {
      if (err) conn.destroy()
    })
  }
}

/** Quotes an identifier that came from the validated topology. */
export function quoteIdent(name: string): string {
  return '`' + name.replaceAll('`', '``') + '`'
}

/** `db`.`table`, both from the validated topology. */
export function qualified(database: string, table: string): string {
  return `${quoteIdent(database)}.${quoteIdent(table)}`
}
