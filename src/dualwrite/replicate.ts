/**
 * The write path's copy to the secondaries, right after the primary commit.
 *
 * Fast path: copy the write's own image to the secondaries (no lock; the
 * upserts are version-guarded), then re-read the primary. If it still holds
 * exactly that image, any later write committed after our copies landed and
 * replicates itself, so the secondaries are right and the journal row is
 * cleared (batched, journal-clearer.ts). If it changed, a concurrent write
 * may have been overtaken by ours on a secondary (a delete overtaken by our
 * upsert would resurrect the row): fall back to the locked replay
 * (replay.ts), which copies the primary's current row under a shared lock.
 * Any failure leaves the journal row for the drainer.
 *
 * Across a stage switch: the copies into legacy and user (the sides that can
 * become the write primary) are fenced at the version the write was planned
 * under, so a slow copy can never land in a new primary after the flip; and
 * when the re-read finds the primary's fence moved, the write leaves its
 * journal row to the switch's drain (which runs while no write can commit)
 * rather than replaying from a primary that may no longer be one.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { stagePolicy, type StageState } from '../cutover/stages.js'
import { poolFor, withBoundedConnection } from './connections.js'
import type { JournalClearer } from './journal-clearer.js'
import { legacyLocation, primaryOf, shardLocation, type Location, type PrimaryDatabase, type Side } from './placement.js'
import { applySecondaries, errorCode, JOURNAL_TABLE, PRIMARY_TIMEOUT_MS, replayOrder, type ReplayDeps, type ReplayFailure } from './replay.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { differingColumns, FENCE_TABLE, selectListOf, toOrderRow, type OrderRow } from './row-sql.js'

/** One committed primary write whose secondaries are still to be written. */
export interface ReplicateJob {
  readonly primary: PrimaryDatabase
  readonly at: Location
  readonly orderId: string
  /** The after-image; undefined for a delete. */
  readonly image: OrderRow | undefined
  readonly keys: { userId: string; merchantId: string }
  readonly prevMerchantId?: string
  readonly secondaries: readonly Side[]
  readonly journalId: string
  /** The stage version the write was planned (and fenced) under. */
  readonly plannedVersion: number
}

/** What replicate needs from the store. */
export interface ReplicateDeps extends ReplayDeps {
  readonly parallel: boolean
  readonly clearer: JournalClearer
  /** The stage this instance follows now. */
  readonly currentState: () => StageState | undefined
}

/** How one write's replication went. `locked`: it needed a locked replay. */
export interface ReplicateOutcome {
  readonly ok: boolean
  readonly failures: readonly ReplayFailure[]
  readonly locked: boolean
}

/** Copies one committed write to its secondaries; reports failures (never throws for a secondary). */
export async function replicate(deps: ReplicateDeps, job: ReplicateJob): Promise<ReplicateOutcome> {
  const { shape } = deps
  const pool = poolFor(deps.rt, job.primary.host)
  const journaled = [job.keys, ...(job.prevMerchantId ? [{ userId: job.keys.userId, merchantId: job.prevMerchantId }] : [])]
  const image = job.image
  // Columns the caller left to server defaults are unknown here: take the locked path.
  const complete = image === undefined || shape.columns.every((c) => image[c] !== undefined)
  if (complete) {
    // Our copies run while we hold our journal row in share mode, and a replay (the drainer,
    // the switch's drain) takes it exclusively before it copies: so either our copies land
    // before the replay copies the primary's current row, or the replay already ran and
    // deleted the row, and ours (an older image, perhaps of an order since deleted) are skipped.
    const hold = await holdJournalRow(pool, job)
    if (!hold) return { ok: true, failures: [], locked: false }
    let failures: ReplayFailure[]
    try {
      failures = await applySecondaries({ ...deps, fenceVersion: job.plannedVersion }, job.orderId, image, job.secondaries, journaled, deps.parallel)
    } finally {
      await hold.release()
    }
    if (failures.some((f) => f.code === 'FENCE_MOVED')) return afterSwitch(deps, job, journaled)
    if (failures.length > 0) return { ok: false, failures, locked: false }
    // One round trip: the primary's row and its fence. A fence that moved means a switch began
    // after our commit: leave the journal row to the switch's drain instead of replaying here.
    const cols = selectListOf(shape, 'o')
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT f.stage_version AS __fence_version, f.state AS __fence_state, ${cols} FROM ${qualified(job.primary.database, FENCE_TABLE)} f LEFT JOIN ${qualified(job.at.database, job.at.table)} o ON o.${quoteIdent(shape.primaryKey)} = ? WHERE f.id = 1`,
      [job.orderId],
    )
    const r = rows[0]
    if (!r || r.__fence_state !== 'open' || Number(r.__fence_version) !== job.plannedVersion) return afterSwitch(deps, job, journaled)
    const now = r[shape.primaryKey] === null ? undefined : toOrderRow(r, shape.columns)
    const same = image === undefined ? now === undefined : now !== undefined && differingColumns(now, image, shape.columns).length === 0
    if (same) {
      deps.clearer.enqueue(job.primary, job.journalId)
      return { ok: true, failures: [], locked: false }
    }
  }
  const conn = await pool.getConnection()
  try {
    const out = await replayOrder(deps, conn, { primary: job.primary, primaryLocation: job.at, orderId: job.orderId, secondaries: job.secondaries, journaled, journalIds: [job.journalId] })
    return { ...out, locked: true }
  } finally {
    conn.release()
  }
}

/**
 * Opens a transaction on the primary holding the write's journal row in
 * share mode; undefined when the row is gone (a replay already copied the
 * order). `release` ends the transaction (nothing was written in it).
 */
async function holdJournalRow(pool: ReturnType<typeof poolFor>, job: ReplicateJob): Promise<{ release(): Promise<void> } | undefined> {
  const conn = await pool.getConnection()
  let open = false
  try {
    await conn.query({ sql: 'START TRANSACTION', timeout: PRIMARY_TIMEOUT_MS })
    open = true
    const [rows] = await conn.query<RowDataPacket[]>({ sql: `SELECT id FROM ${qualified(job.primary.database, JOURNAL_TABLE)} WHERE id = ? LOCK IN SHARE MODE`, timeout: PRIMARY_TIMEOUT_MS }, [job.journalId])
    if (rows.length > 0) {
      return {
        async release() {
          await conn.query('COMMIT').catch(() => conn.destroy())
          conn.release()
        },
      }
    }
    await conn.query('COMMIT')
    conn.release()
    return undefined
  } catch (err) {
    if (open) await conn.query('ROLLBACK').catch(() => undefined)
    conn.release()
    throw err
  }
}

/**
 * The stage changed between our commit and our copies. The switch's drain
 * replays the journal while no write can commit, but an unfenced copy (the
 * merchant side) that landed after it could still hold an image older than
 * a later delete. So replay once more from the primary of the stage this
 * instance now follows, under that primary's fence (a stale instance is
 * refused there), and clear our journal row. If that fails, the row stays
 * for the drainer.
 */
async function afterSwitch(deps: ReplicateDeps, job: ReplicateJob, journaled: readonly { userId: string; merchantId: string }[]): Promise<ReplicateOutcome> {
  const moved: ReplayFailure = { side: job.primary.side, host: job.primary.host, database: job.primary.database, code: 'FENCE_MOVED' }
  const fresh = deps.currentState()
  if (!fresh || fresh.version === job.plannedVersion) return { ok: false, failures: [moved], locked: false }
  const policy = stagePolicy(fresh)
  const at = policy.writePrimary === 'legacy' ? legacyLocation(deps.rt.config) : shardLocation(deps.rt.config, 'user', job.keys.userId)
  const primary = primaryOf(at)
  const same = primary.name === job.primary.name
  try {
    const out = await withBoundedConnection(poolFor(deps.rt, primary.host), primary, deps.timeoutMs, (conn) =>
      replayOrder(deps, conn, { primary, primaryLocation: at, orderId: job.orderId, secondaries: policy.writeSecondaries, journaled, journalIds: same ? [job.journalId] : [], fenceState: fresh }),
    )
    if (out.ok && !same) deps.clearer.enqueue(job.primary, job.journalId)
    return { ...out, locked: true }
  } catch (err) {
    return { ok: false, failures: [{ ...moved, code: errorCode(err) }], locked: true }
  }
}
