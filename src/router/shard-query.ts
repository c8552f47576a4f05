/**
 * One read on one shard under a deadline. The deadline is enforced twice:
 * on the server (MariaDB `SET STATEMENT max_statement_time`, MySQL's
 * `MAX_EXECUTION_TIME` hint) so an abandoned query stops using the server,
 * and in the client (a timer covering the pool wait and the round trip), so a
 * host that stopped answering (a blackholed network, a wedged server) fails
 * the shard on time. A connection abandoned by the client timer or an abort
 * is destroyed, never returned to the pool with a query still running.
 */
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise'

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
export function isServerTimeout(err: unknown): boolean {
  const e = err as { errno?: unknown; code?: unknown }
  return e?.errno === 1969 || e?.errno === 3024 || e?.code === 'ER_STATEMENT_TIMEOUT' || e?.code === 'ER_QUERY_TIMEOUT'
}

function withServerLimit(sql: string, timeoutMs: number, mariadb: boolean): string {
  if (mariadb) return `SET STATEMENT max_statement_time=${(timeoutMs / 1000).toFixed(3)} FOR ${sql}`
  // MySQL reads the hint; MariaDB before 12 treats it as a comment.
  return sql.replace(/^SELECT /, `SELECT /*+ MAX_EXECUTION_TIME(${Math.max(1, Math.ceil(timeoutMs))}) */ `)
}

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
        // mysql2 records the server flavour from the handshake; without it only the client deadline applies.
        const mariadb = (c.connection as unknown as { _isMariaDB?: unknown })._isMariaDB === true
        try {
          const [rows] = await c.query<RowDataPacket[]>(withServerLimit(read.sql, read.timeoutMs, mariadb), read.params as unknown[])
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
