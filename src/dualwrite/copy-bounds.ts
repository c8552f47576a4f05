/**
 * Server-side bounds on a copy statement, so that a statement its client
 * gave up on cannot change anything afterwards:
 *
 * - a deadline in the statement's own WHERE, on the server's clock
 *   (`UTC_TIMESTAMP(6) < ?`, evaluated when the server starts it): a
 *   statement that a stalled or paused server starts late does nothing;
 * - a bound on how long it may run once started (MariaDB `SET STATEMENT
 *   max_statement_time, innodb_lock_wait_timeout, lock_wait_timeout FOR`;
 *   MySQL 8 `SET_VAR(lock_wait_timeout)` and the server's InnoDB lock wait),
 *   so one that started in time has ended before the client's own bound;
 * - the client, at its bound, kills the statement (`KILL QUERY`) where the
 *   server can still be reached (connections.ts).
 *
 * The deadline is the client's bound minus the server-side run bound minus
 * the uncertainty of the clock reading, converted to the server's clock with
 * an offset measured per pool (one `SELECT UTC_TIMESTAMP(6)`, its round trip
 * halved as the uncertainty, refreshed in the background every 30 s).
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { dialectOf, type Dialect } from '../runtime/dialect.js'

export interface ClockReading {
  /** What the server speaks (the dialect seam: detected, or the config's). */
  readonly dialect: Dialect
  /** server clock − local clock, ms. */
  readonly offsetMs: number
  /** Half the round trip of the reading, ms. */
  readonly uncertaintyMs: number
  readonly at: number
}

const REFRESH_MS = 30_000
const readings = new WeakMap<Pool, { last?: ClockReading; pending?: Promise<ClockReading> }>()

/** What a reading needs: a pool or one of its connections. */
interface Queryable {
  query<T extends RowDataPacket[]>(opts: { sql: string; timeout?: number }): Promise<[T, unknown]>
}

async function measure(pool: Pool, on: Queryable, timeoutMs: number): Promise<ClockReading> {
  const dialect = await dialectOf(pool, on as Pick<Pool, 'query'>)
  const t0 = Date.now()
  const [rows] = await on.query<RowDataPacket[]>({ sql: 'SELECT UTC_TIMESTAMP(6) AS now', timeout: timeoutMs })
  const t1 = Date.now()
  const server = Date.parse(`${String(rows[0]!.now).replace(' ', 'T')}Z`)
  return { dialect, offsetMs: server - (t0 + t1) / 2, uncertaintyMs: Math.ceil((t1 - t0) / 2) + 1, at: t1 }
}

/**
 * The server's flavor and clock offset for a pool: measured on first use
 * (on `conn` when given, bounded by `timeoutMs`), then refreshed in the
 * background (a stale reading is used meanwhile).
 * @throws the driver's error when the first reading fails (the host is down)
 */
export async function serverClock(pool: Pool, conn?: Queryable, timeoutMs = 5_000): Promise<ClockReading> {
  let e = readings.get(pool)
  if (!e) readings.set(pool, (e = {}))
  const entry = e
  if (!entry.last && conn) {
    const r = await measure(pool, conn, timeoutMs)
    entry.last = r
    return r
  }
  const refresh = () => {
    entry.pending ??= measure(pool, pool, 5_000).then(
      (r) => {
        entry.last = r
        entry.pending = undefined
        return r
      },
      (err: unknown) => {
        entry.pending = undefined
        throw err
      },
    )
    return entry.pending
  }
  if (!entry.last) return refresh()
  if (Date.now() - entry.last.at > REFRESH_MS) refresh().catch(() => undefined)
  return entry.last
}

/** How long a copy statement may run on the server once started: half the client's bound, at most 1 s. */
export function serverRunBoundMs(clientBoundMs: number): number {
  return Math.max(1, Math.min(1_000, Math.floor(clientBoundMs / 2)))
}

/**
 * The deadline to bind into a copy statement (`UTC_TIMESTAMP(6) < ?`), as
 * the server's UTC text: a statement the server starts after it does nothing.
 */
export function copyDeadline(clock: ClockReading, startedAt: number, clientBoundMs: number): string {
  const local = startedAt + clientBoundMs - serverRunBoundMs(clientBoundMs) - clock.uncertaintyMs - 5
  return new Date(local + clock.offsetMs).toISOString().replace('T', ' ').replace('Z', '')
}

/**
 * Prefixes a copy statement with its server-side run bound (pure).
 * MariaDB bounds everything (time, row locks, metadata locks); MySQL 8 has no
 * run-time bound for writes, so there only the metadata-lock wait is bounded
 * per statement (`SET_VAR`, 8.0.3+) and the InnoDB lock wait is the server's;
 * MySQL 5.7 has no per-statement bound at all (see docs/reliability.md).
 */
export function boundCopySql(d: Pick<Dialect, 'name'>, sql: string, clientBoundMs: number): string {
  const ms = serverRunBoundMs(clientBoundMs)
  const lockS = Math.max(1, Math.ceil(ms / 1000))
  if (d.name === 'mariadb') return `SET STATEMENT max_statement_time=${(ms / 1000).toFixed(3)}, innodb_lock_wait_timeout=${lockS}, lock_wait_timeout=${lockS} FOR ${sql}`
  if (d.name === 'mysql57') return sql
  const verb = /^\s*(INSERT|DELETE|UPDATE|SELECT)\b/i.exec(sql)
  if (!verb) return sql
  return `${sql.slice(0, verb[0].length)} /*+ SET_VAR(lock_wait_timeout=${lockS}) */${sql.slice(verb[0].length)}`
}
