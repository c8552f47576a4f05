/**
 * The relay's SQL on one outbox (`shardkit_outbox` in a primary database):
 * read the unpublished rows in id order, mark rows published under the
 * relay's fencing token, prune published rows past the retention, and the
 * barrier across a write flip.
 *
 * Why no cursor: ids are taken at insert, transactions commit in another
 * order, so a row with a smaller id can appear after a larger one was read.
 * Every read starts again at the smallest unpublished id (index
 * `idx_pending (published_at, id)`), so a late commit is never skipped. The
 * events of one order are ordered anyway: the store locks the order row, so
 * the next change of an order inserts its event after the previous committed.
 *
 * The barrier: an order has two possible primaries, legacy and its user
 * shard's database. The write switch raises every fence, waits for writes in
 * flight and opens them all at the new stage version, so every event written
 * before a flip carries a smaller `stage_version` than any event after it,
 * and within one outbox `stage_version` never decreases with `id`. A relay
 * therefore holds back a row while an outbox of the OTHER side still has an
 * unpublished row with a smaller `stage_version`: the old primary's events all
 * go out before the new primary's (both directions, so rollback too). User
 * databases never share an order, so they do not wait on each other.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { poolFor } from '../dualwrite/connections.js'
import type { PrimaryDatabase } from '../dualwrite/placement.js'
import { OUTBOX_TABLE, RELAY_TOKEN_TABLE } from './outbox.js'
import type { OrderEvent, OrderEventType } from './message.js'
import { LOGICAL_SHARDS } from '../router/shard-function.js'

/** One unpublished outbox row. */
export interface OutboxRow {
  readonly id: string
  readonly stageVersion: number
  readonly event: OrderEvent
}

const ISO = `DATE_FORMAT(occurred_at, '%Y-%m-%dT%H:%i:%s.%fZ')`

/**
 * The first `limit` unpublished rows in id order; `skipShards`: leave out the
 * rows of these logical user shards (their counterpart outbox is unreachable,
 * relay-counterparts.ts). All events of an order share its user's shard, so
 * skipping a shard skips whole orders and never reorders one.
 */
export async function readPending(rt: Runtime, p: PrimaryDatabase, limit: number, skipShards: readonly number[] = []): Promise<OutboxRow[]> {
  const skip = skipShards.length > 0 ? `AND MOD(user_id, ${LOGICAL_SHARDS}) NOT IN (?)` : ''
  const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(
    `SELECT id, event_id, order_id, user_id, merchant_id, type, version, stage_version, ${ISO} AS occurred
     FROM ${qualified(p.database, OUTBOX_TABLE)} WHERE published_at IS NULL ${skip} ORDER BY id LIMIT ?`,
    skipShards.length > 0 ? [skipShards, limit] : [limit],
  )
  return rows.map(rowOf)
}

/** An outbox row as read (columns id, event_id, order_id, user_id, merchant_id, type, version, stage_version, occurred). */
export function rowOf(r: RowDataPacket): OutboxRow {
  return {
    id: String(r.id),
    stageVersion: Number(r.stage_version),
    event: {
      eventId: String(r.event_id),
      orderId: String(r.order_id),
      userId: String(r.user_id),
      merchantId: String(r.merchant_id),
      type: String(r.type) as OrderEventType,
      version: Number(r.version),
      // DATE_FORMAT's %f has 6 digits; the wire format has milliseconds.
      occurredAt: String(r.occurred).replace(/\.(\d{3})\d{3}Z$/, '.$1Z'),
    },
  }
}

/**
 * Marks rows published, in one statement that also checks the relay's token
 * in the outbox database. Returns how many rows it marked (0 with a stale token).
 */
export async function markPublished(rt: Runtime, p: PrimaryDatabase, token: number, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0
  const [r] = await poolFor(rt, p.host).query<ResultSetHeader>(
    `UPDATE ${qualified(p.database, OUTBOX_TABLE)} o JOIN ${qualified(p.database, RELAY_TOKEN_TABLE)} t ON t.id = 1 AND t.token = ?
     SET o.published_at = NOW(3) WHERE o.id IN (?) AND o.published_at IS NULL`,
    [token, ids],
  )
  return r.affectedRows
}

/** The token stamped in the outbox database (0 when none). */
export async function readToken(rt: Runtime, p: PrimaryDatabase): Promise<number> {
  const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(`SELECT token FROM ${qualified(p.database, RELAY_TOKEN_TABLE)} WHERE id = 1`)
  return rows[0] ? Number(rows[0].token) : 0
}

/** Deletes published rows older than `retentionMs`, `chunk` at a time, except rows still held for a target (outbox-retry.ts); returns how many. */
export async function prunePublished(rt: Runtime, p: PrimaryDatabase, retentionMs: number, chunk = 5_000): Promise<number> {
  let total = 0
  for (;;) {
    const [r] = await poolFor(rt, p.host).query<ResultSetHeader>(
      `DELETE FROM ${qualified(p.database, OUTBOX_TABLE)} WHERE published_at IS NOT NULL AND published_at < NOW(3) - INTERVAL ? MICROSECOND
       AND NOT EXISTS (SELECT 1 FROM ${qualified(p.database, 'shardkit_outbox_retry')} h WHERE h.outbox_id = ${qualified(p.database, OUTBOX_TABLE)}.id) LIMIT ?`,
      [retentionMs * 1000, chunk],
    )
    total += r.affectedRows
    if (r.affectedRows < chunk) return total
  }
}

/**
 * The stage version of the oldest unpublished row, or undefined when the
 * outbox is drained, has no table, or its database was dropped (a retired
 * legacy database holds nothing that could still be published).
 */
export async function firstPendingStageVersion(rt: Runtime, p: PrimaryDatabase): Promise<number | undefined> {
  try {
    const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(`SELECT stage_version FROM ${qualified(p.database, OUTBOX_TABLE)} WHERE published_at IS NULL ORDER BY id LIMIT 1`)
    return rows[0] ? Number(rows[0].stage_version) : undefined
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ER_NO_SUCH_TABLE' || code === 'ER_BAD_DB_ERROR') return undefined
    throw err
  }
}
