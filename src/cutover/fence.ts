/**
 * The write fence: one row (id = 1, stage_version, state) in `shardkit_fence`
 * of every database that can be a write primary. The databases enforce it,
 * not the instances' good behaviour:
 *
 * - every primary write transaction reads the row LOCK IN SHARE MODE first
 *   ({@link checkFence}) and refuses itself unless the fence is open at the
 *   stage version the write was planned under;
 * - a switch takes the row exclusively in a transaction it keeps open
 *   ({@link raiseFences}): the UPDATE waits for the writes in flight to
 *   commit, and new writes queue behind it (they wait, bounded by the
 *   switch's own time limit, after which it aborts and reopens);
 * - the switch then updates every row to the new version, `open`, and
 *   commits. A write planned under the old version that was waiting can only
 *   read the new row, so it is refused (retryable) and never commits after
 *   the flip; an instance that never heard of the change is refused the same way.
 *
 * Fence rows are created by the first switch (at `legacy -> dual-write`). A
 * primary with no row is "not provisioned"; the dual-write store allows that
 * only at stage `legacy` (src/dualwrite/fence-gate.ts).
 */
import type { PoolConnection, RowDataPacket } from 'mysql2/promise'
import { isShardkitError, ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { killServerStatement, poolFor } from '../dualwrite/connections.js'
import { serverClock } from '../dualwrite/copy-bounds.js'
import { primaryDatabases, type PrimaryDatabase } from '../dualwrite/placement.js'

/** The fence table's name in every primary database. */
export const FENCE_TABLE = 'shardkit_fence'

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown }
  return String(e?.code ?? e?.errno ?? 'UNKNOWN')
}

/**
 * Inside the primary write transaction, before the write: reads the fence
 * row LOCK IN SHARE MODE (so a switch cannot flip until this transaction ends).
 * Returns the primary's clock (UTC, `YYYY-MM-DD HH:MM:SS.mmm`), read in the same statement.
 * @throws ShardkitError `FENCE_REJECTED` (retryable) when the fence is raised, at another version, or the wait for it timed out;
 *   `FENCE_REJECTED` (not retryable, details.fence = 'missing') when the database has no fence row or table
 * @example
 * await conn.beginTransaction()
 * await checkFence(conn, 'orders_legacy', state.version)
 * await conn.query('INSERT ...'); await conn.commit()
 */
export async function checkFence(conn: PoolConnection, database: string, plannedVersion: number): Promise<{ now: string }> {
  let rows: RowDataPacket[]
  try {
    // The primary's clock comes with it (no extra round trip): the write's times are the database's.
    ;[rows] = await conn.query<RowDataPacket[]>(`SELECT stage_version, state, UTC_TIMESTAMP(3) AS now FROM ${qualified(database, FENCE_TABLE)} WHERE id = 1 LOCK IN SHARE MODE`)
  } catch (err) {
    const code = codeOf(err)
    if (code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_LOCK_DEADLOCK') {
      throw new ShardkitError('FENCE_REJECTED', `the write fence on ${database} stayed raised past the lock wait limit; a stage switch is running: retry the write`, { database, plannedVersion }, { cause: err, retryable: true })
    }
    if (code === 'ER_NO_SUCH_TABLE') throw missing(database, plannedVersion, err)
    throw err
  }
  const r = rows[0]
  if (!r) throw missing(database, plannedVersion)
  const version = Number(r.stage_version)
  if (r.state !== 'open' || version !== plannedVersion) {
    throw new ShardkitError(
      'FENCE_REJECTED',
      `the write fence on ${database} is ${String(r.state)} at stage version ${version}, this write was planned at ${plannedVersion}; the stage changed: retry once the instance has the new stage`,
      { database, plannedVersion, fenceVersion: version, fence: String(r.state) },
      { retryable: true },
    )
  }
  return { now: String(r.now).slice(0, 23) }
}

function missing(database: string, plannedVersion: number, cause?: unknown): ShardkitError {
  return new ShardkitError('FENCE_REJECTED', `${database} has no write fence row; run \`shardctl provision\` and make the first cutover move`, { database, plannedVersion, fence: 'missing' }, { cause, retryable: false })
}

/** One primary's fence as read (or why it could not be). */
export interface FenceReading {
  readonly primary: string
  readonly database: string
  readonly version: number | null
  readonly state: 'open' | 'raised' | 'missing' | 'unreachable'
}

/** Reads every primary's fence without locking (for status and recovery). */
export async function readFences(rt: Runtime): Promise<FenceReading[]> {
  return Promise.all(
    primaryDatabases(rt.config).map(async (p): Promise<FenceReading> => {
      try {
        const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(`SELECT stage_version, state FROM ${qualified(p.database, FENCE_TABLE)} WHERE id = 1`)
        const r = rows[0]
        if (!r) return { primary: p.name, database: p.database, version: null, state: 'missing' }
        return { primary: p.name, database: p.database, version: Number(r.stage_version), state: r.state === 'open' ? 'open' : 'raised' }
      } catch (err) {
        if (codeOf(err) === 'ER_NO_SUCH_TABLE') return { primary: p.name, database: p.database, version: null, state: 'missing' }
        return { primary: p.name, database: p.database, version: null, state: 'unreachable' }
      }
    }),
  )
}

/** Fences held raised by a switch: open them at the new version, or release (roll back to what they were). */
export interface RaisedFences {
  readonly primaries: readonly string[]
  /** When every row was held (writes in flight had committed). */
  readonly heldAt: number
  /**
   * Sets every row to `version`, open, and commits. A primary whose commit
   * fails is retried once outside the held transaction; the names of those
   * still not open are returned.
   */
  open(version: number): Promise<string[]>
  /**
   * Commits every fence as raised at `version` and lets go of the rows: from
   * here a crash leaves writes refused (until the next move recovers), never
   * the old version open. Call right before the commit point. Throws when a
   * primary could not commit; `open` still opens them all.
   */
  persist(version: number): Promise<void>
  /** Rolls back every held transaction (fences return to their previous row). Idempotent. */
  release(): Promise<void>
}

/**
 * Raises the fence on every primary database: one transaction per primary,
 * kept open, holding the row exclusively. Creates a missing row (at
 * `currentVersion`). Waits for the writes in flight, at most `timeoutMs`.
 * @throws ShardkitError `PRECONDITION_FAILED` when a fence table is missing (run `shardctl provision`);
 *   `SHARD_TIMEOUT` when a primary did not give up its fence row in time; the driver's error otherwise. Nothing stays raised on throw.
 */
export async function raiseFences(rt: Runtime, opts: { currentVersion: number; timeoutMs: number }): Promise<RaisedFences> {
  const primaries = primaryDatabases(rt.config)
  const held: { p: PrimaryDatabase; conn: PoolConnection; done: boolean }[] = []
  const waitSeconds = Math.max(1, Math.ceil(opts.timeoutMs / 1000))
  const releaseAll = async () => {
    await Promise.all(
      held.map(async (h) => {
        if (h.done) return
        h.done = true
        await h.conn.rollback().catch(() => undefined)
        await h.conn.query('SET SESSION innodb_lock_wait_timeout = DEFAULT').catch(() => undefined)
        h.conn.release()
      }),
    )
  }
  // Each raise waits for the writes in flight on its primary; the whole raise is bounded by
  // `timeoutMs` on the client (the lock-wait setting is only a backstop in whole seconds): past
  // it, the waiting statements are killed on the servers and everything rolls back.
  const work = Promise.allSettled(
    primaries.map(async (p) => {
      const conn = await poolFor(rt, p.host).getConnection()
      const h = { p, conn, done: false }
      held.push(h)
      await conn.query('SET SESSION innodb_lock_wait_timeout = ?', [waitSeconds])
      const { dialect } = await serverClock(poolFor(rt, p.host), conn)
      await conn.beginTransaction()
      try {
        // Bounded on the server too where it can be (MariaDB): the raise must not outlive its budget.
        const bound = dialect.name === 'mariadb' ? `SET STATEMENT max_statement_time=${(opts.timeoutMs / 1000).toFixed(3)} FOR ` : ''
        await conn.query(
          `${bound}INSERT INTO ${qualified(p.database, FENCE_TABLE)} (id, stage_version, state) VALUES (1, ?, 'raised') ON DUPLICATE KEY UPDATE state = 'raised'`,
          [opts.currentVersion],
        )
      } catch (err) {
        const code = codeOf(err)
        if (code === 'ER_NO_SUCH_TABLE') {
          throw new ShardkitError('PRECONDITION_FAILED', `${p.database} has no ${FENCE_TABLE} table; run \`shardctl provision\` first`, { primary: p.name, database: p.database }, { cause: err })
        }
        // 1969: MariaDB's max_statement_time (mysql2 has no name for it).
        if (code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_QUERY_INTERRUPTED' || code === '1969') {
          throw new ShardkitError('SHARD_TIMEOUT', `writes in flight on ${p.name} held its fence past ${opts.timeoutMs} ms; the switch was aborted, retry it`, { primary: p.name }, { cause: err, retryable: true })
        }
        throw err
      }
    }),
  )
  let timer: NodeJS.Timeout | undefined
  const late = await Promise.race([work.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), opts.timeoutMs)))])
  clearTimeout(timer)
  if (late) for (const h of held) killServerStatement(poolFor(rt, h.p.host), h.conn)
  const results = await work
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (late || failure) {
    await releaseAll()
    if (failure && !(late && isShardkitError(failure.reason, 'SHARD_TIMEOUT'))) throw failure.reason
    throw new ShardkitError('SHARD_TIMEOUT', `writes in flight held a fence past ${opts.timeoutMs} ms; the switch was aborted, retry it`, {}, { retryable: true })
  }
  const heldAt = performance.now()
  let persisted = false
  return {
    primaries: primaries.map((p) => p.name),
    heldAt,
    async persist(version: number): Promise<void> {
      persisted = true
      const failed: string[] = []
      await Promise.all(
        held.map(async (h) => {
          if (h.done) return
          try {
            await h.conn.query(`UPDATE ${qualified(h.p.database, FENCE_TABLE)} SET stage_version = ?, state = 'raised' WHERE id = 1`, [version])
            await h.conn.commit()
          } catch {
            failed.push(h.p.name)
          }
        }),
      )
      await releaseAll()
      if (failed.length) throw new ShardkitError('SHARD_FAILED', `could not commit the raised fence on ${failed.join(', ')}`, { primaries: failed }, { retryable: true })
    },
    async open(version: number): Promise<string[]> {
      const failed: string[] = persisted ? primaries.map((p) => p.name) : []
      await Promise.all(
        held.map(async (h) => {
          if (h.done) return
          try {
            await h.conn.query(`UPDATE ${qualified(h.p.database, FENCE_TABLE)} SET stage_version = ?, state = 'open' WHERE id = 1`, [version])
            await h.conn.commit()
          } catch {
            failed.push(h.p.name)
          }
        }),
      )
      await releaseAll()
      const still: string[] = []
      for (const name of failed) {
        const p = primaries.find((x) => x.name === name)!
        try {
          await openFence(rt, p, version)
        } catch {
          still.push(name)
        }
      }
      return still
    },
    release: releaseAll,
  }
}

async function openFence(rt: Runtime, p: PrimaryDatabase, version: number): Promise<void> {
  await poolFor(rt, p.host).query(
    `INSERT INTO ${qualified(p.database, FENCE_TABLE)} (id, stage_version, state) VALUES (1, ?, 'open') ON DUPLICATE KEY UPDATE stage_version = VALUES(stage_version), state = 'open'`,
    [version],
  )
}

/**
 * Opens every primary's fence at `version` (autocommit; waits for writes in
 * flight). Used by recovery after an interrupted switch. Returns the primaries it could not open.
 */
export async function openFencesAt(rt: Runtime, version: number): Promise<string[]> {
  const failed: string[] = []
  await Promise.all(
    primaryDatabases(rt.config).map(async (p) => {
      try {
        await openFence(rt, p, version)
      } catch {
        failed.push(p.name)
      }
    }),
  )
  return failed
}
