/**
 * Replay: make every secondary hold the primary's current row. The same code
 * runs right after each write (replicate.ts), in the drainer and in the
 * switch's drain, so a write's secondaries and a later replay never disagree.
 *
 * Order safety comes from the copies themselves, not from locks held while
 * they run (copy-sql.ts): an upsert never replaces a newer version, never
 * passes a tombstone above its version, and does nothing once its deadline
 * passed; a delete writes its tombstone first and removes only older
 * versions. So whatever order the copies of an order land in, late or
 * early, each table ends holding the newest version that belongs there, or
 * nothing when a tombstone says the order left it. A journal row may then be
 * cleared as soon as the copies of its write (or of a newer read of the
 * primary) are applied or superseded everywhere: any later write has a
 * journal row of its own. No primary connection or lock is held while the
 * copies run, so writers never wait on each other's copies and a pool can
 * never run dry with every connection held by a write waiting for another.
 */
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { isShardkitError, ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import type { StageState } from '../cutover/stages.js'
import { passFence } from './fence-gate.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { poolFor, withBoundedConnection } from './connections.js'
import { boundCopySql, copyDeadline, serverClock } from './copy-bounds.js'
import type { Dialect } from '../runtime/dialect.js'
import { copyOutcomeSql, deleteBelowSql, guardedUpsertParams, guardedUpsertSql, tombstoneBeforeDeleteSql } from './copy-sql.js'
import { belowTombstone, DEAD, TOMBSTONE_TABLE } from './tombstones.js'
import { reconcilePlan, type Location, type PrimaryDatabase, type Side } from './placement.js'
import { selectByIdSql, toOrderRow, valuesOf, VERSION_COLUMN, type OrderRow, type RowShape } from './row-sql.js'

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
  /** Journal rows (in the primary's journal) cleared once every secondary holds the row. */
  readonly journalIds: readonly string[]
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
  /** Timeouts seen per host in this pass: a host counts as down after two (one slow statement on a busy server is not an outage). */
  readonly hostTimeouts?: Map<string, number>
  /** Repair: the primary's row overwrites any copy, whatever its version (the caller holds the primary's row lock). */
  readonly force?: boolean
}

/** The stable code of an error for the journal and the logs (never its message, which may hold values). */
export function errorCode(err: unknown): string {
  if (err instanceof ShardkitError) return err.code
  const e = err as { code?: unknown; errno?: unknown }
  return String(e?.code ?? e?.errno ?? 'UNKNOWN').slice(0, 64)
}

/**
 * Replays one order. Each primary statement borrows a connection from
 * `primary` for itself alone: none is held while the copies run, so replays
 * in parallel never starve the copies of connections on a host that serves
 * both. Never throws for a secondary failure (it is reported); throws only
 * when the primary itself fails.
 */
export async function replayOrder(deps: ReplayDeps, primary: Pool, req: ReplayRequest): Promise<ReplayOutcome> {
  const { shape } = deps
  // A hung primary must not hang a drain: every primary statement is bounded too.
  const q = <T>(sql: string, values: unknown[] = []) => primary.query<T & RowDataPacket[]>({ sql, timeout: PRIMARY_TIMEOUT_MS }, values)
  const journal = qualified(req.primary.database, JOURNAL_TABLE)
  let ids = req.journalIds
  if (ids.length > 0) {
    // Entries already gone were replayed by someone else: nothing to do.
    const [present] = await q<RowDataPacket[]>(`SELECT id FROM ${journal} WHERE id IN (?)`, [ids])
    ids = present.map((r) => String(r.id))
    if (ids.length === 0) return { ok: true, failures: [] }
  }
  // Read after the journal rows: the row is at least as new as every write they name (each
  // committed its journal row with its own change), so copying it covers all of them.
  const [rows] = await q<RowDataPacket[]>(selectByIdSql(shape, req.primaryLocation), [req.orderId])
  const row = rows[0] ? toOrderRow(rows[0], shape.columns) : undefined
  const failures = await applySecondaries(deps, req.orderId, row, req.secondaries, req.journaled, false)
  if (failures.length === 0 && ids.length > 0) await q(`DELETE FROM ${journal} WHERE id IN (?)`, [ids])
  return { ok: failures.length === 0, failures }
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
  const startedAt = Date.now()
  try {
    const pool = poolFor(deps.rt, l.host)
    const outcome = await withBoundedConnection(pool, l, deps.timeoutMs, async (c, remaining) => {
      const clock = await serverClock(pool, c, remaining())
      const copy: CopyContext = { c, remaining, dialect: clock.dialect, deadline: copyDeadline(clock, startedAt, deps.timeoutMs), boundMs: deps.timeoutMs, force: deps.force === true }
      return action === 'upsert' && row ? upsertCopy(deps.shape, l, orderId, row, copy) : deleteCopy(deps.shape, l, orderId, row, copy)
    })
    // Not applied at our version: the journal row stays for the drainer (or the switch's drain).
    return outcome === 'ok' ? undefined : fail(OUTCOME_CODES[outcome])
  } catch (err) {
    const code = errorCode(err)
    // Connection-level failures mean the host is gone for this pass; a SQL error is about this row only.
    if (isHostFailure(err)) {
      // A refused or broken connection: the host is gone for this pass. A timeout may only be a busy
      // server (under load one statement can outlast its bound): gone after the second.
      const timedOut = isShardkitError(err, 'SHARD_TIMEOUT') || (err as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT'
      const n = timedOut ? (deps.hostTimeouts?.get(l.host) ?? 0) + 1 : Infinity
      if (timedOut) deps.hostTimeouts?.set(l.host, n)
      if (n >= 2) deps.downHosts?.add(l.host)
    }
    return fail(code)
  }
}

type CopyOutcome = 'ok' | 'late' | 'not-applied'
const OUTCOME_CODES: Record<Exclude<CopyOutcome, 'ok'>, string> = { late: 'COPY_LATE', 'not-applied': 'NOT_APPLIED' }

interface CopyContext {
  readonly c: PoolConnection
  readonly remaining: () => number
  readonly dialect: Dialect
  /** The server-clock deadline bound into every statement. */
  readonly deadline: string
  /** The client's bound (the server-side run bound is derived from it). */
  readonly boundMs: number
  readonly force: boolean
}

/** The tombstone version a copy's delete writes: DEAD when the primary has no row, else one above the primary's version (the copy moved away). */
export function deleteTombstone(row: OrderRow | undefined): string {
  return row === undefined ? DEAD : (BigInt(String(row[VERSION_COLUMN])) + 1n).toString()
}

async function upsertCopy(shape: RowShape, l: Location, orderId: string, row: OrderRow, x: CopyContext): Promise<CopyOutcome> {
  const version = String(row[VERSION_COLUMN])
  const q = <T>(sql: string, values: unknown[]) => x.c.query<T & RowDataPacket[]>({ sql, timeout: x.remaining() }, values)
  if (x.force) {
    // Repair: the primary's row wins over any copy and any tombstone above it (the caller holds the primary's row lock).
    await q('START TRANSACTION', [])
    try {
      await q(`DELETE FROM ${qualified(l.database, TOMBSTONE_TABLE)} WHERE order_id = ? AND tbl = ? AND version > CAST(? AS UNSIGNED)`, [orderId, l.table, version])
      await q(boundCopySql(x.dialect, guardedUpsertSql(shape, l, { force: true }), x.boundMs), guardedUpsertParams(valuesOf(row, shape.columns), x.deadline, orderId, l, version))
      const [t] = await q<RowDataPacket[]>(copyOutcomeSql(shape, l), [orderId, orderId, l.table, x.deadline])
      if (t[0]!.v === null || String(t[0]!.v) !== version) {
        await q('ROLLBACK', [])
        return t[0]!.intime ? 'not-applied' : 'late'
      }
      await q('COMMIT', [])
      return 'ok'
    } catch (err) {
      await x.c.query('ROLLBACK').catch(() => undefined)
      throw err
    }
  }
  const [res] = (await x.c.query({ sql: boundCopySql(x.dialect, guardedUpsertSql(shape, l), x.boundMs), timeout: x.remaining() }, guardedUpsertParams(valuesOf(row, shape.columns), x.deadline, orderId, l, version))) as unknown as [ResultSetHeader]
  if (res.affectedRows > 0) return 'ok'
  // Nothing changed: the target already holds this write or a newer one, a tombstone says a later
  // write removed the order from here (that write's own journal row covers it), or the deadline
  // passed. Judged by the target itself.
  const [t] = await q<RowDataPacket[]>(copyOutcomeSql(shape, l), [orderId, orderId, l.table, x.deadline])
  const o = t[0]!
  if (o.v !== null && BigInt(String(o.v)) >= BigInt(version)) return 'ok'
  if (o.tv !== null && BigInt(String(o.tv)) > BigInt(version)) return 'ok'
  return Number(o.intime) === 1 ? 'not-applied' : 'late'
}

async function deleteCopy(shape: RowShape, l: Location, orderId: string, row: OrderRow | undefined, x: CopyContext): Promise<CopyOutcome> {
  const q = <T>(sql: string, values: unknown[] = []) => x.c.query<T & RowDataPacket[]>({ sql, timeout: x.remaining() }, values)
  const tomb = deleteTombstone(row)
  await q('START TRANSACTION')
  try {
    // The tombstone first: a late upsert holding the gap makes this wait, so the delete lands after it.
    await q(boundCopySql(x.dialect, tombstoneBeforeDeleteSql(l), x.boundMs), [orderId, l.table, tomb, x.deadline])
    await q(boundCopySql(x.dialect, deleteBelowSql(shape, l, { force: x.force }), x.boundMs), x.force ? [orderId, x.deadline] : [orderId, tomb, x.deadline])
    const [t] = await q<RowDataPacket[]>(copyOutcomeSql(shape, l), [orderId, orderId, l.table, x.deadline])
    const o = t[0]!
    // Done when no copy below the tombstone is left (a copy at or above it is a later write's) and the tombstone stands.
    const gone = o.v === null || (!x.force && !belowTombstone(String(o.v), tomb))
    const marked = o.tv !== null && !belowTombstone(String(o.tv), tomb)
    if (gone && marked) {
      await q('COMMIT')
      return 'ok'
    }
    await q('ROLLBACK')
    return Number(o.intime) === 1 ? 'not-applied' : 'late'
  } catch (err) {
    await x.c.query('ROLLBACK').catch(() => undefined)
    throw err
  }
}

/** True for errors that say the server is unreachable, not that a statement failed. */
export function isHostFailure(err: unknown): boolean {
  if (err instanceof ShardkitError) return err.code === 'SHARD_TIMEOUT'
  const e = err as { fatal?: boolean; code?: string }
  return e?.fatal === true || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT'].includes(String(e?.code))
}

/** What one repair of an order must do, given the primary's row (src/verify/repair.ts plans it). */
export interface RepairRequest {
  readonly primary: PrimaryDatabase
  /** The table that holds the order on the primary, if anything can route to one. */
  readonly primaryLocation: Location | undefined
  readonly orderId: string
  /** The stage the repair started under: its fence is passed first (shared), so no switch can flip meanwhile. */
  readonly fenceState: StageState
  readonly plan: (row: OrderRow | undefined) => ReadonlyArray<{ location: Location; action: 'upsert' | 'delete' }>
  /** Called after each copy that was applied (the fault harness's `repair.statement-applied`). */
  readonly onApplied?: (step: { location: Location; action: 'upsert' | 'delete' }) => Promise<void> | void
}

/**
 * Repairs one order: passes the primary's fence at the repair's stage (a
 * switch since then refuses it: `FENCE_REJECTED`), reads the primary's row
 * under a shared lock (no write to the order can commit meanwhile), and
 * makes each planned copy hold exactly that row, or not hold the order,
 * whatever version it holds, through the same bounded, tombstoned copies as
 * every replay. Never throws for a copy that fails (it is reported).
 */
export async function repairOrder(deps: ReplayDeps, conn: PoolConnection, req: RepairRequest): Promise<ReplayOutcome & { row: OrderRow | undefined; steps: number }> {
  const q = <T>(sql: string, values: unknown[] = []) => conn.query<T & RowDataPacket[]>({ sql, timeout: PRIMARY_TIMEOUT_MS }, values)
  await q('START TRANSACTION')
  try {
    await passFence(conn, req.primary.database, req.fenceState)
    let row: OrderRow | undefined
    if (req.primaryLocation) {
      const [rows] = await q<RowDataPacket[]>(selectByIdSql(deps.shape, req.primaryLocation, 'share'), [req.orderId])
      row = rows[0] ? toOrderRow(rows[0], deps.shape.columns) : undefined
    }
    const steps = req.plan(row)
    const failures: ReplayFailure[] = []
    for (const s of steps) {
      const f = await applyStep({ ...deps, force: true }, s.location, s.action, req.orderId, row)
      if (f) failures.push(f)
      else await req.onApplied?.(s)
    }
    await q('COMMIT')
    return { ok: failures.length === 0, failures, row, steps: steps.length }
  } catch (err) {
    await conn.rollback().catch(() => undefined)
    throw err
  }
}
