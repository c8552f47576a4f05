/**
 * One read on one shard under a deadline. The deadline is enforced twice:
 * on the server (the dialect's statement-time bound, src/runtime/dialect.ts:
 * MariaDB `SET STATEMENT max_statement_time`, MySQL's `MAX_EXECUTION_TIME`
 * hint; the dialect comes from `SELECT VERSION()` or the config, never from
 * the handshake string a proxy may rewrite) so an abandoned query stops using the server,
 * and in the client (a timer covering the pool wait and the round trip), so a
 * host that stopped answering (a blackholed network, a wedged server) fails
 * the shard on time. A connection abandoned by the client timer or an abort
 * is destroyed, never returned to the pool with a query still running.
 */
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise'
import { boundedSelect, dialectOf, isStatementTimeout } from '../runtime/dialect.js'

/** Extra time the client timer allows beyond the server-side limit, so the server's clean error wins when it can. */
export const CLIENT_GRACE_MS = 250

/** Why a shard read ended without rows. */
export class ShardReadStopped extends Error {
  constructor(readonly reason: 'timeout' | 'aborted') {
    super(reason === 'timeout' ? 'shard read timed out' : 'shard read aborted')
  }
}

export interface ShardRead {
  readonly pool: Pool
  readonly sql: string
  readonly params: readonly unknown[]
  readonly timeoutMs: number
  readonly signal?: AbortSignal
}

/** True for the server's own statement-time errors (MariaDB 1969, MySQL 3024). */
export const isServerTimeout = isStatementTimeout

/**
 * Runs one SELECT on a connection borrowed from `pool`.
 * @throws ShardReadStopped on the client deadline or an abort; the driver's error otherwise
 */
export function readShard(read: ShardRead): Promise<RowDataPacket[]> {
  return new Promise((resolve, reject) => {
    let conn: PoolConnection | undefined
    let settled = false
    const finish = (err: unknown, rows?: RowDataPacket[]) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      read.signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve(rows!)
      else reject(err)
    }
    const giveUp = (reason: 'timeout' | 'aborted') => {
      if (settled) return
      const c = conn
      conn = undefined
      // The query may still be running: the connection must not go back to the pool.
      c?.destroy()
      finish(new ShardReadStopped(reason))
    }
    const onAbort = () => giveUp('aborted')
    const timer = setTimeout(() => giveUp('timeout'), read.timeoutMs + CLIENT_GRACE_MS)
    if (read.signal?.aborted) {
      giveUp('aborted')
      return
    }
    read.signal?.addEventListener('abort', onAbort, { once: true })
    read.pool.getConnection().then(
      async (c) => {
        if (settled) {
          c.release()
          return
        }
        conn = c
        try {
          // Read once per pool, on this connection (cached); the first read counts against the deadline.
          const dialect = await dialectOf(read.pool, c)
          const [rows] = await c.query<RowDataPacket[]>(boundedSelect(dialect, read.sql, read.timeoutMs), read.params as unknown[])
          if (conn === c) {
            conn = undefined
            c.release()
          }
          finish(undefined, rows)
        } catch (err) {
          if (conn === c) {
            conn = undefined
            if ((err as { fatal?: boolean }).fatal) c.destroy()
            else c.release()
          }
          finish(err)
        }
      },
      (err: unknown) => finish(err),
    )
  })
}
