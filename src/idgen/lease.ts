/**
 * Worker-number leases for the id generator, kept in the control database
 * (MySQL/MariaDB): a store that outlives a restart of itself.
 *
 * One row per worker number 0..255 in `id_worker_lease`. Expiry is judged by
 * the database's clock (`UTC_TIMESTAMP(3)`), never a client's, so clients
 * whose clocks disagree still agree on who holds what. Each row also keeps
 * `reserved_until_ms`, the high-water of the id times its holders may have
 * issued: a holder never issues above its recorded reservation, and a new
 * holder starts strictly after it, whatever the clocks did in between.
 *
 * That holds only while the control database keeps every committed write:
 * lossless (semi-sync AFTER_SYNC) replication, or Galera/group replication.
 * An asynchronous failover can roll a row back under a live holder; against
 * that, wrap this store in `MirroredLeaseStore` (mirror.ts), which keeps the
 * high-water in Redis too.
 */
import { randomBytes } from 'node:crypto'
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import { CONTROL_TABLES } from '../control/tables.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { MAX_WORKER } from './layout.js'

/** The table that holds the leases, in the control database. */
export const LEASE_TABLE = 'id_worker_lease'
/** How many worker numbers the layout has room for (8 bits). */
export const WORKER_COUNT = MAX_WORKER + 1

/** What a generator asks for when it starts. */
export interface LeaseRequest {
  /** Who holds it, for operators (`host:pid`, a service name). Not a secret. */
  readonly owner: string
  readonly ttlMs: number
  /** The id time (Unix ms) the holder may issue up to before its first renewal. */
  readonly reserveUntilMs: number
  /** Take only this worker number (a takeover, or a test); otherwise any free one. */
  readonly worker?: number
  /**
   * High-waters known from outside the lease table (the Redis mirror), by
   * worker: among free workers the one whose larger high-water is oldest is
   * taken first, so a row a failover rolled back is not preferred.
   */
  readonly highWaterHints?: ReadonlyMap<number, number>
}

/** A lease the store granted. */
export interface LeaseGrant {
  readonly worker: number
  /** Proves this holder on renew/release; a new holder gets a new token. */
  readonly token: string
  /** The previous holders' recorded high-water (Unix ms): this holder issues only times above it. */
  readonly highWaterMs: number
  /** The reservation recorded with the grant (Unix ms): this holder issues no time above it. */
  readonly reservedUntilMs: number
  /**
   * True when the store cannot vouch for `highWaterMs` (the Redis mirror had
   * no record): the generator then waits out any previous holder's possible
   * lifetime before issuing.
   */
  readonly highWaterUncertain?: boolean
}

/**
 * Where leases live. {@link MysqlLeaseStore} is the real one; tests may pass
 * another implementation with the same contract.
 */
export interface LeaseStore {
  /**
   * Takes a worker number whose lease has expired (or was released).
   * @throws ShardkitError `ID_WORKERS_EXHAUSTED` when every worker (or the one asked for) is leased
   */
  acquire(req: LeaseRequest): Promise<LeaseGrant>
  /**
   * Extends the lease by `ttlMs` from now (store time) and raises the
   * reservation to at least `reserveUntilMs`.
   * @throws ShardkitError `ID_LEASE_LOST` when another holder took the worker
   */
  renew(worker: number, token: string, ttlMs: number, reserveUntilMs: number): Promise<void>
  /**
   * Gives the worker back at once, recording `highWaterMs` (the last id time
   * issued) as the high-water the next holder must start after. A no-op when
   * the token no longer holds the worker.
   */
  release(worker: number, token: string, highWaterMs: number): Promise<void>
}

/** Creates the lease table (and, when asked, the control database) if missing, and seeds the 256 rows. */
export async function ensureLeaseSchema(pool: Pool, database: string, opts: { createDatabase?: boolean } = {}): Promise<void> {
  if (opts.createDatabase) await pool.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(database)}`)
  const def = CONTROL_TABLES.find((t) => t.name === LEASE_TABLE)
  if (!def) throw new ShardkitError('INTERNAL', `${LEASE_TABLE} is missing from CONTROL_TABLES`)
  await pool.query(def.ddl(database))
  await seedWorkers(pool, database)
}

async function seedWorkers(pool: Pool, database: string): Promise<void> {
  const values = Array.from({ length: WORKER_COUNT }, (_, i) => i)
  await pool.query(`INSERT IGNORE INTO ${qualified(database, LEASE_TABLE)} (worker_id) VALUES ${values.map(() => '(?)').join(',')}`, values)
}

interface LeaseRow extends RowDataPacket {
  worker_id: number
  owner: string
  version: string
  reserved_until_ms: string
  free: number | string
  lease_expires_at: string
}

/**
 * Leases in a MySQL/MariaDB control database. Receives a pool it does not own
 * (the runtime's control pool, or any pool on that server): table names are
 * qualified, so the pool's default database does not matter.
 * @example
 * const store = new MysqlLeaseStore(rt.controlServer(), rt.config.control.database)
 * const gen = await openIdGenerator({ store })
 */
export class MysqlLeaseStore implements LeaseStore {
  private readonly table: string
  private seeded = false

  constructor(
    private readonly pool: Pool,
    private readonly database: string,
  ) {
    this.table = qualified(database, LEASE_TABLE)
  }

  async acquire(req: LeaseRequest): Promise<LeaseGrant> {
    if (req.worker !== undefined && !(Number.isInteger(req.worker) && req.worker >= 0 && req.worker <= MAX_WORKER)) {
      throw new ShardkitError('USAGE', `worker ${req.worker} is out of range: give 0 to ${MAX_WORKER}`, { argument: 'worker' })
    }
    const token = randomBytes(16).toString('hex')
    // A few rounds: a round only fails when other generators won every free row we tried.
    for (let round = 0; round < 4; round++) {
      const rows = await this.readRows(req.worker)
      const free = rows.filter((r) => Number(r.free) === 1)
      if (free.length === 0) throw this.exhausted(rows, req.worker)
      // Oldest reservation first: the worker whose next holder can start soonest.
      const hw = (r: LeaseRow): number => Math.max(Number(r.reserved_until_ms), req.highWaterHints?.get(r.worker_id) ?? 0)
      free.sort((a, b) => hw(a) - hw(b) || a.worker_id - b.worker_id)
      for (const r of free) {
        const [res] = await this.pool.query<ResultSetHeader>(
          `UPDATE ${this.table} SET owner = ?, owner_token = ?, version = version + 1,
             lease_expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? MICROSECOND),
             reserved_until_ms = GREATEST(reserved_until_ms, ?),
             acquired_at = UTC_TIMESTAMP(3), renewed_at = UTC_TIMESTAMP(3), released_at = NULL
           WHERE worker_id = ? AND version = ? AND lease_expires_at <= UTC_TIMESTAMP(3)`,
          [req.owner.slice(0, 128), token, req.ttlMs * 1000, req.reserveUntilMs, r.worker_id, r.version],
        )
        if (res.affectedRows === 1) {
          // The version matched, so the row still held the reservation we read.
          const highWaterMs = Number(r.reserved_until_ms)
          return { worker: r.worker_id, token, highWaterMs, reservedUntilMs: Math.max(highWaterMs, req.reserveUntilMs) }
        }
      }
    }
    throw new ShardkitError('ID_WORKERS_EXHAUSTED', 'could not take a worker lease: other generators won every free worker four times in a row; retry', {}, { retryable: true })
  }

  async renew(worker: number, token: string, ttlMs: number, reserveUntilMs: number): Promise<void> {
    const [res] = await this.pool.query<ResultSetHeader>(
      `UPDATE ${this.table} SET lease_expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? MICROSECOND),
         reserved_until_ms = GREATEST(reserved_until_ms, ?), renewed_at = UTC_TIMESTAMP(3)
       WHERE worker_id = ? AND owner_token = ?`,
      [ttlMs * 1000, reserveUntilMs, worker, token],
    )
    if (res.affectedRows !== 1) {
      throw new ShardkitError('ID_LEASE_LOST', `worker ${worker}'s lease was taken by another generator after it expired; open a new generator`, { worker })
    }
  }

  async release(worker: number, token: string, highWaterMs: number): Promise<void> {
    // LEAST: the high-water only replaces the reservation downwards; nothing above it was issued.
    await this.pool.query(
      `UPDATE ${this.table} SET owner = '', owner_token = '', version = version + 1,
         lease_expires_at = '1970-01-01 00:00:01.000', reserved_until_ms = LEAST(reserved_until_ms, ?),
         released_at = UTC_TIMESTAMP(3)
       WHERE worker_id = ? AND owner_token = ?`,
      [highWaterMs, worker, token],
    )
  }

  private async readRows(worker: number | undefined): Promise<LeaseRow[]> {
    const sql = `SELECT worker_id, owner, version, reserved_until_ms, lease_expires_at,
        (lease_expires_at <= UTC_TIMESTAMP(3)) AS free
      FROM ${this.table} ${worker === undefined ? '' : 'WHERE worker_id = ?'}`
    let [rows] = await this.pool.query<LeaseRow[]>(sql, worker === undefined ? [] : [worker])
    // `provision` creates the table empty; the rows appear on first use.
    if (!this.seeded && (worker === undefined ? rows.length < WORKER_COUNT : rows.length === 0)) {
      await seedWorkers(this.pool, this.database)
      ;[rows] = await this.pool.query<LeaseRow[]>(sql, worker === undefined ? [] : [worker])
    }
    this.seeded = true
    return rows
  }

  private exhausted(rows: readonly LeaseRow[], worker: number | undefined): ShardkitError {
    const soonest = rows.map((r) => r.lease_expires_at).sort()[0] ?? 'unknown'
    if (worker !== undefined) {
      return new ShardkitError('ID_WORKERS_EXHAUSTED', `worker ${worker} is leased by "${rows[0]?.owner ?? '?'}" until ${soonest} UTC (database time); wait for it to expire, or do not ask for a specific worker`, { worker }, { retryable: true })
    }
    return new ShardkitError(
      'ID_WORKERS_EXHAUSTED',
      `all ${WORKER_COUNT} id-generator workers are leased; the first lease to expire ends at ${soonest} UTC (database time). Close idle generators (each process should hold one), or wait for crashed ones' leases to expire`,
      { workers: WORKER_COUNT },
      { retryable: true },
    )
  }
}
