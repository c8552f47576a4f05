/**
 * Replay: make every secondary hold the primary's current row. The same code
 * runs right after each write and in the drainer, so a write's secondaries
 * and a later replay can never disagree.
 *
 * Order safety: the primary's row is read `LOCK IN SHARE MODE` inside a
 * transaction held until the secondaries are written, so no other write to
 * that order can commit on the primary (and then race us to a secondary)
 * between our read and our copy. A row that is absent is locked too (the
 * gap), so a replay that deletes on the secondaries cannot overtake a
 * re-insert. The secondary upserts also compare `version` and never replace a
 * newer row. Copying the primary's current row rather than the write's own
 * after-image is what makes replays idempotent and lets them run in any order.
 *
 * Against the write path's own copies (replicate.ts): a replay takes the
 * journal rows it clears `FOR UPDATE` before it copies, and the write path
 * copies only while it holds its journal row in share mode, so a write's
 * stale image can never land after a replay that already cleared its row.
 */
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import type { StageState } from '../cutover/stages.js'
import { passFence } from './fence-gate.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { boundedQuery, poolFor, withBoundedConnection } from './connections.js'
import { reconcilePlan, type Location, type PrimaryDatabase, type Side } from './placement.js'
import { deleteSql, FENCE_TABLE, fencedDeleteSql, fencedUpsertSql, selectByIdSql, toOrderRow, upsertSql, valuesOf, VERSION_COLUMN, type OrderRow, type RowShape } from './row-sql.js'

/** Bound on each statement a replay sends to the primary. */
export const PRIMARY_TIMEOUT_MS = 10_000

/** The journal table's name in every primary database. */
export const JOURNAL_TABLE = 'shardkit_journal'

/** What one replay must reconcile. */
export interface ReplayRequest {
  readonly primary: PrimaryDatabase
  /** The table that holds the order on the primary. */
  readonly primaryLocation: Location
  readonly orderId: string
  /** Secondaries in the order the stage names them. */
  readonly secondaries: readonly Side[]
  /** Keys the journal recorded (after-image, and a previous merchant after a merchant change). */
  readonly journaled: readonly { userId: string; merchantId: string }[]
  /** Journal rows (in the primary's journal) cleared, in the same transaction, once every secondary holds the row. */
  readonly journalIds: readonly string[]
  /** When set, the replay first passes the primary's fence at this stage (shared lock): no switch can flip while it copies. */
  readonly fenceState?: StageState
}

/** A secondary that could not be written. Identifiers only. */
export interface ReplayFailure {
  readonly side: Side
  readonly host: string
  readonly database: string
  readonly code: string
}

export interface ReplayOutcome {
  readonly ok: boolean
  readonly failures: readonly ReplayFailure[]
}

export interface ReplayDeps {
  readonly rt: Runtime
  readonly shape: RowShape
  /** Bound per secondary write. */
  readonly timeoutMs: number
  /** Hosts that already failed in this pass: fail fast instead of waiting on them again. */
  readonly downHosts?: Set<string>
  /**
   * When set, copies into the sides that can be a write primary (legacy,
   * user) apply only while their fence is open at this stage version. The
   * write path sets it (its copies run outside any fence); replays under the
   * journal's own lock do not (the cutover drains inside a raised fence).
   */
  readonly fenceVersion?: number
}

/** The stable code of an error for the journal and the logs (never its message, which may hold values). */
export function errorCode(err: unknown): string {
  if (err instanceof ShardkitError) return err.code
  const e = err as { code?: unknown; errno?: unknown }
  return String(e?.code ?? e?.errno ?? 'UNKNOWN').slice(0, 64)
}

/**
 * Replays one order on `conn`, a connection to the primary's server that is
 * not in a transaction. Never throws for a secondary failure (it is reported);
 * throws only when the primary itself fails.
 */
export async function replayOrder(deps: ReplayDeps, conn: PoolConnection, req: ReplayRequest): Promise<ReplayOutcome> {
  const { shape } = deps
  // A hung primary must not hang a drain: every primary statement is bounded too.
  const q = <T>(sql: string, values: unknown[] = []) => conn.query<T & RowDataPacket[]>({ sql, timeout: PRIMARY_TIMEOUT_MS }, values)
  await q('START TRANSACTION')
  try {
    if (req.fenceState) await passFence(conn, req.primary.database, req.fenceState)
    if (req.journalIds.length > 0) {
      // Wait for the write path's own copies of these entries (they hold them in share mode),
      // so ours land last; entries already gone were replayed by someone else: nothing to do.
      // Only rows that exist are locked, so no gap lock stands in the way of new journal rows.
      const journal = qualified(req.primary.database, JOURNAL_TABLE)
      const [present] = await q<RowDataPacket[]>(`SELECT id FROM ${journal} WHERE id IN (?)`, [req.journalIds])
      const ids = present.map((r) => String(r.id))
      const [locked] = ids.length > 0 ? await q<RowDataPacket[]>(`SELECT id FROM ${journal} WHERE id IN (?) FOR UPDATE`, [ids]) : [[]]
      if (locked.length === 0) {
        await q('COMMIT')
        return { ok: true, failures: [] }
      }
    }
    const [rows] = await q<RowDataPacket[]>(selectByIdSql(shape, req.primaryLocation, 'share'), [req.orderId])
    const row = rows[0] ? toOrderRow(rows[0], shape.columns) : undefined
    const failures = await applySecondaries(deps, req.orderId, row, req.secondaries, req.journaled, false)
    if (failures.length === 0 && req.journalIds.length > 0) {
      await q(`DELETE FROM ${qualified(req.primary.database, JOURNAL_TABLE)} WHERE id IN (?)`, [req.journalIds])
    }
    await q('COMMIT')
    return { ok: failures.length === 0, failures }
  } catch (err) {
    await conn.rollback().catch(() => undefined)
    throw err
  }
}

/**
 * Makes each secondary hold `row` (or not hold the order, when `row` is
 * undefined), in the stage's order or all at once. Returns what failed.
 */
export async function applySecondaries(
  deps: ReplayDeps,
  orderId: string,
  row: OrderRow | undefined,
  secondaries: readonly Side[],
  journaled: readonly { userId: string; merchantId: string }[],
  parallel: boolean,
): Promise<ReplayFailure[]> {
  const { shape } = deps
  const current = row ? { userId: String(row[shape.userColumn]), merchantId: String(row[shape.merchantColumn]) } : undefined
  const steps = secondaries.flatMap((side) => reconcilePlan(deps.rt.config, side, current, journaled))
  const failures: ReplayFailure[] = []
  if (parallel) {
    for (const f of await Promise.all(steps.map((s) => applyStep(deps, s.location, s.action, orderId, row)))) if (f) failures.push(f)
  } else {
    for (const s of steps) {
      const f = await applyStep(deps, s.location, s.action, orderId, row)
      if (f) failures.push(f)
    }
  }
  return failures
}

async function applyStep(deps: ReplayDeps, l: Location, action: 'upsert' | 'delete', orderId: string, row: OrderRow | undefined): Promise<ReplayFailure | undefined> {
  const fail = (code: string): ReplayFailure => ({ side: l.side, host: l.host, database: l.database, code })
  if (deps.downHosts?.has(l.host)) return fail('HOST_DOWN')
  try {
    const fenced = deps.fenceVersion !== undefined && l.side !== 'merchant'
    const outcome = await withBoundedConnection(poolFor(deps.rt, l.host), l, deps.timeoutMs, async (c, remaining): Promise<'ok' | 'moved' | 'not-open'> => {
      let res: ResultSetHeader
      if (action === 'upsert' && row) {
        const values = valuesOf(row, deps.shape.columns)
        res = (await boundedQuery(c, fenced ? fencedUpsertSql(deps.shape, l) : upsertSql(deps.shape, l), fenced ? [...values, deps.fenceVersion] : values, remaining())) as ResultSetHeader
      } else {
        res = (await boundedQuery(c, fenced ? fencedDeleteSql(deps.shape, l) : deleteSql(deps.shape, l), fenced ? [orderId, deps.fenceVersion] : [orderId], remaining())) as ResultSetHeader
      }
      if (!fenced || res.affectedRows > 0) return 'ok'
      // Nothing changed: either nothing needed to (the target already holds this write or a newer
      // one, or no row to delete), or the fence was not open at our version. Judge by the target
      // row itself, not by the fence read afterwards: fences reopen one primary after another, so
      // a fence read after the statement can be open at our version although it was still raised
      // when the statement ran (the copy was skipped, and a fence check alone called it done).
      const [t] = await c.query<RowDataPacket[]>({ sql: `SELECT ${quoteIdent(VERSION_COLUMN)} AS v FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(deps.shape.primaryKey)} = ?`, timeout: remaining() }, [orderId])
      const applied = action === 'upsert' && row ? t.length > 0 && Number(t[0]!.v) >= Number(row[VERSION_COLUMN]) : t.length === 0
      if (applied) return 'ok'
      const [f] = await c.query<RowDataPacket[]>({ sql: `SELECT stage_version, state FROM ${qualified(l.database, FENCE_TABLE)} WHERE id = 1`, timeout: remaining() })
      return f[0] && Number(f[0].stage_version) === deps.fenceVersion ? 'not-open' : 'moved'
    })
    // Not applied at our version: the journal row stays for the drainer (or the switch's drain).
    return outcome === 'ok' ? undefined : fail(outcome === 'moved' ? 'FENCE_MOVED' : 'FENCE_NOT_OPEN')
  } catch (err) {
    const code = errorCode(err)
    // Connection-level failures mean the host is gone for this pass; a SQL error is about this row only.
    if (isHostFailure(err)) deps.downHosts?.add(l.host)
    return fail(code)
  }
}

/** True for errors that say the server is unreachable, not that a statement failed. */
export function isHostFailure(err: unknown): boolean {
  if (err instanceof ShardkitError) return err.code === 'SHARD_TIMEOUT'
  const e = err as { fatal?: boolean; code?: string }
  return e?.fatal === true || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT'].includes(String(e?.code))
}
