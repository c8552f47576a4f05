/**
 * The relay's retry table (`shardkit_outbox_retry`, next to `shardkit_outbox`
 * in each primary database): events the relay handed off but still owes to
 * one target. A target is a queue name (the relay publishes per queue through
 * the default exchange when it knows the consuming services), or '' for the
 * topic exchange.
 *
 * Why a side table: a queue at its cap (`reject-publish`) nacks, and an
 * unbound routing key returns; both used to leave the outbox row unpublished
 * at the head of the outbox, where `batchSize` of them stopped every other
 * partition, and each retry through the exchange delivered the event again to
 * every healthy queue. Now the relay records "owed to X" here and marks the
 * row published in the same transaction (under its fencing token), so the
 * outbox head moves on, and a retry goes to X alone.
 *
 * Order per order and target: while (order O, target X) has a row here, every
 * later event of O for X is held here too (reason `behind`), and retries for X
 * go in outbox id order, an order's chain stopping at its first refusal. Across
 * a write flip the other side's rows for O with a smaller stage version hold
 * O's events the same way (heldKeys); they no longer hold the flip barrier,
 * which counts unpublished rows only.
 */
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { poolFor } from '../dualwrite/connections.js'
import type { PrimaryDatabase } from '../dualwrite/placement.js'
import { OUTBOX_TABLE, RELAY_TOKEN_TABLE } from './outbox.js'
import { rowOf, type OutboxRow } from './outbox-store.js'

/** The retry table's name in every primary database. */
export const RETRY_TABLE = 'shardkit_outbox_retry'

/** Why an event is held for a target. */
export type HoldReason = 'nack' | 'unroutable' | 'behind'

/** One event owed to one target. */
export interface HeldEvent {
  readonly row: OutboxRow
  readonly target: string
  readonly reason: HoldReason
}

/** Held events per target of one outbox (for status). */
export interface HeldTarget {
  /** Queue name, or '' for the topic exchange. */
  readonly target: string
  readonly count: number
  /** Age of the oldest hold (ms). */
  readonly oldestAgeMs: number
}

/** `order\ntarget`: the key holds are looked up by. */
export const holdKey = (orderId: string, target: string): string => `${orderId}\n${target}`

function missing(err: unknown, p: PrimaryDatabase): never {
  if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE') {
    throw new ShardkitError('PRECONDITION_FAILED', `${p.name} has no ${RETRY_TABLE} table; run \`shardctl provision\` (it adds the relay's retry table)`, { outbox: p.name }, { cause: err })
  }
  throw err
}

/**
 * The smallest held stage version per (order, target) among `orderIds`.
 * @throws the driver's error when the outbox database does not answer (callers hold the rows: safe)
 */
export async function heldKeys(rt: Runtime, p: PrimaryDatabase, orderIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (orderIds.length === 0) return out
  try {
    const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(
      `SELECT order_id, target, MIN(stage_version) AS sv FROM ${qualified(p.database, RETRY_TABLE)} WHERE order_id IN (?) GROUP BY order_id, target`,
      [orderIds],
    )
    for (const r of rows) out.set(holdKey(String(r.order_id), String(r.target)), Number(r.sv))
    return out
  } catch (err) {
    const code = (err as { code?: string }).code
    // A retired database (dropped after the cutover) holds nothing.
    if (code === 'ER_BAD_DB_ERROR') return out
    return missing(err, p)
  }
}

/** Targets with held events, each with its count and oldest hold. */
export async function heldTargets(rt: Runtime, p: PrimaryDatabase): Promise<HeldTarget[]> {
  try {
    const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(
      `SELECT r.target, COUNT(*) AS n, TIMESTAMPDIFF(MICROSECOND, MIN(r.held_at), NOW(3)) AS us
       FROM ${qualified(p.database, RETRY_TABLE)} r JOIN ${qualified(p.database, OUTBOX_TABLE)} o ON o.id = r.outbox_id GROUP BY r.target ORDER BY r.target`,
    )
    return rows.map((r) => ({ target: String(r.target), count: Number(r.n), oldestAgeMs: Math.max(0, Math.round(Number(r.us) / 1000)) }))
  } catch (err) {
    return missing(err, p)
  }
}

/** Up to `limit` events held for `target`, in outbox id order. */
export async function readHeld(rt: Runtime, p: PrimaryDatabase, target: string, limit: number): Promise<OutboxRow[]> {
  try {
    const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(
      `SELECT o.id, o.event_id, o.order_id, o.user_id, o.merchant_id, o.type, o.version, o.stage_version, DATE_FORMAT(o.occurred_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS occurred
       FROM ${qualified(p.database, RETRY_TABLE)} r JOIN ${qualified(p.database, OUTBOX_TABLE)} o ON o.id = r.outbox_id
       WHERE r.target = ? ORDER BY r.outbox_id LIMIT ?`,
      [target, limit],
    )
    return rows.map(rowOf)
  } catch (err) {
    return missing(err, p)
  }
}

/** Checks the relay's token in the outbox database inside `conn`'s transaction (share lock: a takeover waits for the commit). */
async function tokenHolds(conn: PoolConnection, p: PrimaryDatabase, token: number): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT token FROM ${qualified(p.database, RELAY_TOKEN_TABLE)} WHERE id = 1 LOCK IN SHARE MODE`)
  return rows[0] !== undefined && Number(rows[0].token) === token
}

/**
 * In one transaction under the relay's token: records `held` and marks
 * `markIds` (every row whose targets were all confirmed or held) published.
 * Returns how many rows it marked, or undefined when the token is stale (nothing written).
 */
export async function handOff(rt: Runtime, p: PrimaryDatabase, token: number, held: readonly HeldEvent[], markIds: readonly string[]): Promise<number | undefined> {
  if (markIds.length === 0) return 0
  const conn = await poolFor(rt, p.host).getConnection()
  try {
    await conn.beginTransaction()
    if (!(await tokenHolds(conn, p, token))) {
      await conn.rollback()
      return undefined
    }
    if (held.length > 0) {
      await conn.query(`INSERT IGNORE INTO ${qualified(p.database, RETRY_TABLE)} (outbox_id, target, order_id, stage_version, reason) VALUES ?`, [
        held.map((h) => [h.row.id, h.target, h.row.event.orderId, h.row.stageVersion, h.reason]),
      ])
    }
    const [r] = await conn.query<ResultSetHeader>(`UPDATE ${qualified(p.database, OUTBOX_TABLE)} SET published_at = NOW(3) WHERE id IN (?) AND published_at IS NULL`, [markIds])
    await conn.commit()
    return r.affectedRows
  } catch (err) {
    await conn.rollback().catch(() => undefined)
    return missing(err, p)
  } finally {
    conn.release()
  }
}

/** Deletes holds the target confirmed, under the relay's token; returns how many (undefined: stale token). */
export async function releaseHeld(rt: Runtime, p: PrimaryDatabase, token: number, target: string, outboxIds: readonly string[]): Promise<number | undefined> {
  if (outboxIds.length === 0) return 0
  const [r] = await poolFor(rt, p.host).query<ResultSetHeader>(
    `DELETE r FROM ${qualified(p.database, RETRY_TABLE)} r JOIN ${qualified(p.database, RELAY_TOKEN_TABLE)} t ON t.id = 1 AND t.token = ?
     WHERE r.target = ? AND r.outbox_id IN (?)`,
    [token, target, outboxIds],
  )
  return r.affectedRows
}

/** Counts a refused retry (for status). Never throws. */
export async function countAttempt(rt: Runtime, p: PrimaryDatabase, target: string, outboxId: string): Promise<void> {
  await poolFor(rt, p.host)
    .query(`UPDATE ${qualified(p.database, RETRY_TABLE)} SET attempts = attempts + 1 WHERE target = ? AND outbox_id = ?`, [target, outboxId])
    .catch(() => undefined)
}
