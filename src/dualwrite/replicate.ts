/**
 * The write path's copy to the secondaries, right after the primary commit.
 *
 * Copy the write's own image (or, when the caller left columns to the
 * table's defaults, the primary's row read just now) to every secondary,
 * then clear the write's journal row (batched, journal-clearer.ts). Nothing
 * is locked meanwhile: each copy is guarded in the statement itself
 * (copy-sql.ts: version, tombstone, deadline), so a copy that lands late, or
 * after a newer one, or in a side that became the write primary since,
 * changes nothing it should not. A copy that fails, or that a guard stopped
 * without a newer write having made it unnecessary, leaves the journal row
 * for the drainer, or for the switch's drain.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { poolFor } from './connections.js'
import type { JournalClearer } from './journal-clearer.js'
import type { Location, PrimaryDatabase, Side } from './placement.js'
import { applySecondaries, PRIMARY_TIMEOUT_MS, type ReplayDeps, type ReplayFailure } from './replay.js'
import { selectByIdSql, toOrderRow, type OrderRow } from './row-sql.js'

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
  /** The stage version the write was planned under (its primary transaction passed the fence there). */
  readonly plannedVersion: number
}

/** What replicate needs from the store. */
export interface ReplicateDeps extends ReplayDeps {
  readonly parallel: boolean
  readonly clearer: JournalClearer
}

/** How one write's replication went. `reread`: the image was incomplete and the primary's row was copied instead. */
export interface ReplicateOutcome {
  readonly ok: boolean
  readonly failures: readonly ReplayFailure[]
  readonly reread: boolean
}

/** Copies one committed write to its secondaries; reports failures (never throws for a secondary). */
export async function replicate(deps: ReplicateDeps, job: ReplicateJob): Promise<ReplicateOutcome> {
  const journaled = [job.keys, ...(job.prevMerchantId ? [{ userId: job.keys.userId, merchantId: job.prevMerchantId }] : [])]
  let row = job.image
  // Columns the caller left to server defaults are unknown here: copy the primary's row instead.
  const reread = row !== undefined && deps.shape.columns.some((c) => row![c] === undefined)
  if (reread) {
    const [rows] = await poolFor(deps.rt, job.primary.host).query<RowDataPacket[]>({ sql: selectByIdSql(deps.shape, job.at), timeout: PRIMARY_TIMEOUT_MS }, [job.orderId])
    row = rows[0] ? toOrderRow(rows[0], deps.shape.columns) : undefined
  }
  const failures = await applySecondaries(deps, job.orderId, row, job.secondaries, journaled, deps.parallel)
  if (failures.length > 0) return { ok: false, failures, reread }
  deps.clearer.enqueue(job.primary, job.journalId)
  return { ok: true, failures: [], reread }
}
