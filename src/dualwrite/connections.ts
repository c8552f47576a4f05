/**
 * Bounded work on a secondary's connection. A dead or unreachable host must
 * cost a request at most `timeoutMs`: mysql2 waits up to its connectTimeout
 * for a new connection, and a query on a half-open socket waits forever, so
 * both the acquire and the query race a timer, and a connection that timed
 * out is destroyed instead of going back to the pool. Destroying the socket
 * does not stop the server, which would go on running the statement: so the
 * statement is killed there too (`KILL QUERY`, from another connection, when
 * the server can still be reached). Copy statements also carry their own
 * server-side deadline and run bound (copy-bounds.ts), which hold when it
 * cannot be reached.
 */
import type { Pool, PoolConnection } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { LEGACY_HOST, type Location } from './placement.js'
import { VERSION_COLUMN, type RowShape } from './row-sql.js'
import { exactReads, readColumnKinds } from './column-kinds.js'

/** The pool that serves a location: the legacy pool for the legacy side, else the host's pool. */
export function poolFor(rt: Runtime, host: string): Pool {
  return host === LEGACY_HOST ? rt.legacy() : rt.host(host)
}

function timeoutError(l: Pick<Location, 'host' | 'database'>, ms: number): ShardkitError {
  return new ShardkitError('SHARD_TIMEOUT', `host ${l.host} did not answer within ${ms} ms; the write is journaled and the drainer will retry`, { host: l.host, database: l.database }, { retryable: true })
}

/**
 * Runs `fn` on a connection from `pool`, all within `timeoutMs`.
 * @throws ShardkitError `SHARD_TIMEOUT` past the bound; the driver's error otherwise
 */
export async function withBoundedConnection<T>(pool: Pool, where: Pick<Location, 'host' | 'database'>, timeoutMs: number, fn: (conn: PoolConnection, remainingMs: () => number) => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  const remaining = () => Math.max(1, deadline - Date.now())
  let timer: NodeJS.Timeout | undefined
  let timedOut = false
  const acquire = pool.getConnection()
  let conn: PoolConnection
  try {
    conn = await Promise.race([
      acquire,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true
          reject(timeoutError(where, timeoutMs))
        }, timeoutMs)
      }),
    ])
  } catch (err) {
    // A connection that arrives after we gave up goes straight back.
    if (timedOut) acquire.then((c) => c.release(), () => undefined)
    throw err
  } finally {
    clearTimeout(timer)
  }
  let broken = false
  try {
    return await Promise.race([
      fn(conn, remaining),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          broken = true
          reject(timeoutError(where, timeoutMs))
        }, remaining())
      }),
    ])
  } catch (err) {
    if ((err as { fatal?: boolean }).fatal) broken = true
    throw err
  } finally {
    clearTimeout(timer)
    if (broken) {
      killServerStatement(pool, conn)
      conn.destroy()
    } else conn.release()
  }
}

/**
 * Kills whatever the connection's server thread still runs (fire and forget,
 * bounded): the statement its client gave up on must not finish later and
 * hold locks meanwhile. A server that cannot be reached is not waited for.
 */
export function killServerStatement(pool: Pool, conn: PoolConnection): void {
  const threadId = (conn as unknown as { threadId?: number; connection?: { threadId?: number } }).connection?.threadId ?? (conn as unknown as { threadId?: number }).threadId
  if (!Number.isInteger(threadId)) return
  // Exactly one owner gives the killer connection back: the kill when it ran, else the timer.
  let state: 'waiting' | 'killing' | 'abandoned' = 'waiting'
  const acquire = pool.getConnection()
  const timer = setTimeout(() => {
    if (state === 'waiting') state = 'abandoned'
  }, 1_000)
  timer.unref()
  acquire.then(
    async (k) => {
      if (state === 'abandoned') return k.release()
      state = 'killing'
      clearTimeout(timer)
      try {
        await k.query({ sql: `KILL QUERY ${Number(threadId)}`, timeout: 1_000 })
        k.release()
      } catch (err) {
        // ER_NO_SUCH_THREAD: the statement ended on its own.
        if ((err as { fatal?: boolean }).fatal) k.destroy()
        else k.release()
      }
    },
    () => clearTimeout(timer),
  )
}

/** A query with mysql2's own per-query timeout (it closes the connection when it fires). */
export async function boundedQuery(conn: PoolConnection, sql: string, values: unknown[], timeoutMs: number): Promise<unknown> {
  const [res] = await conn.query({ sql, timeout: timeoutMs }, values)
  return res
}

const shapes = new WeakMap<Runtime, Promise<RowShape>>()

/**
 * The legacy table's columns (every side has the same, provision copies them),
 * read once per runtime from information_schema.
 * @throws ShardkitError `PRECONDITION_FAILED` when the legacy table does not exist or has no `version` column
 */
export function rowShape(rt: Runtime): Promise<RowShape> {
  let p = shapes.get(rt)
  if (!p) {
    const { legacy } = rt.config
    p = (async () => {
      const { columns, kinds } = await readColumnKinds(rt.legacy(), legacy.database, legacy.table)
      if (columns.length === 0) {
        throw new ShardkitError('PRECONDITION_FAILED', `the legacy table ${legacy.database}.${legacy.table} does not exist; check legacy.database and legacy.table in the config`, { database: legacy.database, table: legacy.table })
      }
      for (const c of [legacy.primaryKey, legacy.userColumn, legacy.merchantColumn, VERSION_COLUMN]) {
        if (!columns.includes(c)) {
          throw new ShardkitError('PRECONDITION_FAILED', `the legacy table ${legacy.database}.${legacy.table} has no column ${c}; dual writes need the key columns and an INT UNSIGNED \`version\` column`, { column: c })
        }
      }
      return { columns, primaryKey: legacy.primaryKey, userColumn: legacy.userColumn, merchantColumn: legacy.merchantColumn, kinds: exactReads(kinds) }
    })()
    p.catch(() => shapes.delete(rt))
    shapes.set(rt, p)
  }
  return p
}

