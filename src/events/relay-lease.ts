/**
 * One active relay per outbox: a lease row per outbox in the control database
 * (`shardkit_relay_lease`) with a fencing token that grows on every takeover,
 * expiring in database time. The holder stamps its token into the outbox's own
 * database (`shardkit_relay_token`, only ever raised), and the statement that
 * marks rows published joins that row: a relay that lost its lease (paused,
 * partitioned) cannot mark anything once a newer holder stamped, so the two
 * never both advance one outbox. Standbys poll and take the row once it expired.
 *
 * The new token is max(lease counter, token stamped in the outbox) + 1: the
 * stamp only rises, so a control table that was reset (restored, recreated)
 * cannot hand out a token below it, which every mark would refuse while each
 * pass published its batch again.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { poolFor } from '../dualwrite/connections.js'
import type { PrimaryDatabase } from '../dualwrite/placement.js'
import { RELAY_TOKEN_TABLE } from './outbox.js'

/** The control table of relay leases. */
export const RELAY_LEASE_TABLE = 'shardkit_relay_lease'

/** A held lease. */
export interface RelayLease {
  readonly outbox: string
  readonly holder: string
  readonly token: number
}

/** One lease row as read (for status). */
export interface RelayLeaseRow {
  readonly outbox: string
  readonly holder: string
  readonly token: number
  /** Milliseconds until expiry (negative: expired), in database time. */
  readonly expiresInMs: number
  readonly renewedAt: string | null
}

function leaseTable(rt: Runtime): string {
  return qualified(rt.config.control.database, RELAY_LEASE_TABLE)
}

/**
 * Takes the lease of `outbox` when it is free, expired, or already ours, with
 * a new token, and stamps the token into the outbox database. Returns undefined
 * when another relay holds it.
 */
export async function acquireRelayLease(rt: Runtime, p: PrimaryDatabase, holder: string, ttlMs: number): Promise<RelayLease | undefined> {
  const pool = rt.control()
  await pool.query(`INSERT IGNORE INTO ${leaseTable(rt)} (outbox) VALUES (?)`, [p.name])
  const stamped = await stampedToken(rt, p)
  const [r] = await pool.query<ResultSetHeader>(
    `UPDATE ${leaseTable(rt)} SET holder = ?, token = GREATEST(token, ?) + 1, expires_at = NOW(3) + INTERVAL ? MICROSECOND, acquired_at = NOW(3), renewed_at = NOW(3)
     WHERE outbox = ? AND (expires_at < NOW(3) OR holder = ? OR holder = '')`,
    [holder, stamped, ttlMs * 1000, p.name, holder],
  )
  if (r.affectedRows !== 1) return undefined
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT token FROM ${leaseTable(rt)} WHERE outbox = ? AND holder = ?`, [p.name, holder])
  if (!rows[0]) return undefined
  const token = Number(rows[0].token)
  // holder is assigned before token: MariaDB evaluates SET left to right, so the IF sees the old token.
  await poolFor(rt, p.host).query(
    `INSERT INTO ${qualified(p.database, RELAY_TOKEN_TABLE)} (id, token, holder) VALUES (1, ?, ?)
     ON DUPLICATE KEY UPDATE holder = IF(VALUES(token) >= token, VALUES(holder), holder), token = GREATEST(token, VALUES(token))`,
    [token, holder],
  )
  return { outbox: p.name, holder, token }
}

/** The token stamped in the outbox database (0 when none yet). */
async function stampedToken(rt: Runtime, p: PrimaryDatabase): Promise<number> {
  const [rows] = await poolFor(rt, p.host).query<RowDataPacket[]>(`SELECT token FROM ${qualified(p.database, RELAY_TOKEN_TABLE)} WHERE id = 1`)
  return rows[0] ? Number(rows[0].token) : 0
}

/** Extends a held lease; false when it was lost (expired and taken). */
export async function renewRelayLease(rt: Runtime, lease: RelayLease, ttlMs: number): Promise<boolean> {
  const [r] = await rt.control().query<ResultSetHeader>(
    `UPDATE ${leaseTable(rt)} SET expires_at = NOW(3) + INTERVAL ? MICROSECOND, renewed_at = NOW(3) WHERE outbox = ? AND holder = ? AND token = ?`,
    [ttlMs * 1000, lease.outbox, lease.holder, lease.token],
  )
  return r.affectedRows === 1
}

/**
 * Milliseconds the held lease has left, in database time; undefined when it
 * is no longer ours (expired and taken, or released). The relay asks right
 * before each publish batch and stops sending once that time is nearly spent.
 */
export async function leaseRemainingMs(rt: Runtime, lease: RelayLease): Promise<number | undefined> {
  const [rows] = await rt.control().query<RowDataPacket[]>(
    `SELECT TIMESTAMPDIFF(MICROSECOND, NOW(3), expires_at) AS us FROM ${leaseTable(rt)} WHERE outbox = ? AND holder = ? AND token = ?`,
    [lease.outbox, lease.holder, lease.token],
  )
  if (!rows[0]) return undefined
  const ms = Math.floor(Number(rows[0].us) / 1000)
  return ms > 0 ? ms : undefined
}

/** Gives the lease up at once (a standby need not wait for expiry). Never throws. */
export async function releaseRelayLease(rt: Runtime, lease: RelayLease): Promise<void> {
  await rt
    .control()
    .query(`UPDATE ${leaseTable(rt)} SET expires_at = '1970-01-01 00:00:01.000', holder = '' WHERE outbox = ? AND holder = ? AND token = ?`, [lease.outbox, lease.holder, lease.token])
    .catch(() => undefined)
}

/** Every lease row (empty when the table is missing). */
export async function readRelayLeases(rt: Runtime): Promise<RelayLeaseRow[]> {
  try {
    const [rows] = await rt
      .control()
      .query<RowDataPacket[]>(`SELECT outbox, holder, token, TIMESTAMPDIFF(MICROSECOND, NOW(3), expires_at) AS us, DATE_FORMAT(renewed_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS renewed FROM ${leaseTable(rt)}`)
    return rows.map((r) => ({ outbox: String(r.outbox), holder: String(r.holder), token: Number(r.token), expiresInMs: Math.round(Number(r.us) / 1000), renewedAt: r.renewed === null ? null : String(r.renewed) }))
  } catch (err) {
    if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE') return []
    throw err
  }
}
