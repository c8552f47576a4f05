/**
 * mysql2 pool construction with the settings every shardkit pool needs:
 * BIGINTs and DECIMALs as exact strings, dates as the server's strings (a copy
 * tool must never shift a DATETIME through a time zone), bounded size.
 */
import mysql from 'mysql2/promise'
import type { Pool, PoolOptions } from 'mysql2/promise'

export type { Pool as MysqlPool, PoolConnection as MysqlConnection } from 'mysql2/promise'

export interface PoolSettings {
  /** Default database of the pool's connections; omitted for host pools (tables are qualified). */
  readonly database?: string
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
    database: settings.database ?? (u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : undefined),
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
  return mysql.createPool(opts)
}

/** Quotes an identifier that came from the validated topology. */
export function quoteIdent(name: string): string {
  return '`' + name.replaceAll('`', '``') + '`'
}

/** `db`.`table`, both from the validated topology. */
export function qualified(database: string, table: string): string {
  return `${quoteIdent(database)}.${quoteIdent(table)}`
}
