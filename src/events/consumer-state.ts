/**
 * The consumer's optional durable memory: the last version handled per order
 * and queue, in a MySQL table of the consuming service's own database.
 * Redis (dedupe.ts) stays the fast path; this table is what survives when
 * Redis loses its data. The consumer writes a row before it records the event
 * in Redis and acks it, and reads it whenever Redis knows nothing about an
 * order (a new order, an expired key, or a flush or restart), so a resend of
 * an event handled before the loss is stale, not new.
 *
 * The table holds one row per (queue, order) ever handled: rows of finished
 * orders can be deleted with `prune` once no resend of them can arrive.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import { quoteIdent, qualified, type MysqlPool } from '../runtime/mysql.js'

/** Default table name. */
export const CONSUMER_STATE_TABLE = 'shardkit_consumer_state'

/** What the consumer needs from a durable store; `createMysqlConsumerState` is the shipped one. */
export interface ConsumerStateStore {
  /** The last version handled for the order on `queue`; 0 when none. @throws ShardkitError `DB_ERROR` */
  lastVersion(queue: string, orderId: string): Promise<number>
  /** Raises the order's last version to `version` (never lowers it). @throws ShardkitError `DB_ERROR` */
  record(queue: string, orderId: string, version: number): Promise<void>
}

export interface MysqlConsumerStateOptions {
  /** A pool on the consuming service's database. Not closed by the store. */
  readonly pool: MysqlPool
  /** Default `shardkit_consumer_state`. */
  readonly table?: string
  /** The database holding the table; default the pool's. */
  readonly database?: string
}

/** The MySQL implementation, with the DDL and pruning beside it. */
export interface MysqlConsumerState extends ConsumerStateStore {
  /** Creates the table if it does not exist. @throws ShardkitError `DB_ERROR` */
  ensureTable(): Promise<void>
  /** Deletes rows of `queue` not updated for `olderThanMs`, at most `limit` per call; returns how many. @throws ShardkitError `DB_ERROR` */
  prune(queue: string, olderThanMs: number, limit?: number): Promise<number>
}

const IDENT = /^[A-Za-z0-9_]{1,64}$/

function dbError(op: string, err: unknown): ShardkitError {
  const code = (err as { code?: string }).code ?? null
  return new ShardkitError('DB_ERROR', `consumer state ${op} failed in MySQL; check the pool given as durableState.pool`, { op, mysqlCode: code }, { cause: err, retryable: true })
}

/**
 * A durable store on a MySQL table.
 * @throws ShardkitError `USAGE` for a table or database name that is not a plain identifier
 * @example
 * const state = createMysqlConsumerState({ pool: billingPool })
 * await state.ensureTable()
 * await createOrderEventConsumer({ runtime: rt, queue, partitions: [3], handle, durableState: state })
 */
export function createMysqlConsumerState(opts: MysqlConsumerStateOptions): MysqlConsumerState {
  const table = opts.table ?? CONSUMER_STATE_TABLE
  if (!IDENT.test(table)) throw new ShardkitError('USAGE', 'Expected durableState table to be 1-64 letters, digits or _', { option: 'table' })
  if (opts.database !== undefined && !IDENT.test(opts.database)) throw new ShardkitError('USAGE', 'Expected durableState database to be 1-64 letters, digits or _', { option: 'database' })
  const t = opts.database ? qualified(opts.database, table) : quoteIdent(table)
  const { pool } = opts
  return {
    async ensureTable() {
      try {
        await pool.query(
          `CREATE TABLE IF NOT EXISTS ${t} (
             queue VARCHAR(200) NOT NULL,
             order_id BIGINT UNSIGNED NOT NULL,
             last_version INT UNSIGNED NOT NULL,
             updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
             PRIMARY KEY (queue, order_id),
             KEY by_age (queue, updated_at)
           ) ENGINE=InnoDB`,
        )
      } catch (err) {
        throw dbError('create table', err)
      }
    },
    async lastVersion(queue, orderId) {
      try {
        const [rows] = await pool.query<RowDataPacket[]>(`SELECT last_version FROM ${t} WHERE queue = ? AND order_id = ?`, [queue, orderId])
        return rows.length === 0 ? 0 : Number(rows[0]!.last_version)
      } catch (err) {
        throw dbError('read', err)
      }
    },
    async record(queue, orderId, version) {
      try {
        await pool.query(`INSERT INTO ${t} (queue, order_id, last_version) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE last_version = GREATEST(last_version, ?)`, [queue, orderId, version, version])
      } catch (err) {
        throw dbError('write', err)
      }
    },
    async prune(queue, olderThanMs, limit = 10_000) {
      if (!Number.isSafeInteger(olderThanMs) || olderThanMs < 1) throw new ShardkitError('USAGE', 'Expected olderThanMs to be a whole number of milliseconds from 1 and up', { option: 'olderThanMs' })
      try {
        const [r] = await pool.query<ResultSetHeader>(`DELETE FROM ${t} WHERE queue = ? AND updated_at < NOW(3) - INTERVAL ? MICROSECOND LIMIT ?`, [queue, olderThanMs * 1000, limit])
        return r.affectedRows
      } catch (err) {
        throw dbError('prune', err)
      }
    },
  }
}
