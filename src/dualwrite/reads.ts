/**
 * The store's reads: get by order id, list by user, list by merchant, each
 * from legacy or the shards as the stage says, plus shadow reads. At
 * `shadow-read` a sample of reads is also done on the shards, in parallel
 * with the real one; a difference is counted and logged with keys only, and
 * a shadow failure never fails the read.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { readsFromShards, stagePolicy, type StageState } from '../cutover/stages.js'
import { ShardkitError } from '../errors.js'
import type { Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { poolFor } from './connections.js'
import { decodeCursor, encodeCursor, pageLimit, type ListPosition } from './cursor.js'
import { readLookup } from './lookup.js'
import { legacyLocation, routeOrderId, shardLocation, userShardLocation, type Location } from './placement.js'
import { CREATED_COLUMN, differingColumns, selectByIdSql, selectListOf, toOrderRow, type OrderRow, type RowShape } from './row-sql.js'
import { errorCode, JOURNAL_TABLE } from './replay.js'

/** Shadow-read and write-path counters a service can export as metrics. */
export interface DualWriteStats {
  writes: number
  /** Writes whose secondaries were not all written at once (their journal row stays for the drainer). */
  secondaryFailures: number
  /** Writes whose image was incomplete (columns left to defaults), so the primary's row was read and copied instead (name kept for compatibility). */
  lockedReplays: number
  fenceRejections: number
  shadowReads: number
  shadowMismatches: number
  shadowErrors: number
}

/** What the read functions need from the store. */
export interface ReadContext {
  readonly rt: Runtime
  readonly shape: RowShape
  readonly state: StageState
  readonly stats: DualWriteStats
  readonly logger: Logger
  readonly random: () => number
}

/** A page of a list. */
export interface OrderPage {
  readonly rows: OrderRow[]
  readonly nextCursor?: string
}

async function readAt(ctx: ReadContext, l: Location, orderId: string): Promise<OrderRow | undefined> {
  const [rows] = await poolFor(ctx.rt, l.host).query<RowDataPacket[]>(selectByIdSql(ctx.shape, l), [orderId])
  return rows[0] ? toOrderRow(rows[0], ctx.shape.columns) : undefined
}

function sampled(ctx: ReadContext): boolean {
  const rate = stagePolicy(ctx.state).shadowReadRate
  return rate > 0 && ctx.random() < rate
}

/** The user shard of an order id: from its shard field, or from order_lookup for a legacy id. */
async function userShardOf(ctx: ReadContext, orderId: string): Promise<{ location: Location; userId?: string } | undefined> {
  const r = routeOrderId(ctx.rt.config, orderId)
  if (r.kind === 'new') return { location: userShardLocation(ctx.rt.config, r.shard) }
  const lk = await readLookup(ctx.rt, orderId)
  return lk ? { location: shardLocation(ctx.rt.config, 'user', lk.userId), userId: lk.userId } : undefined
}

function compare(ctx: ReadContext, what: Record<string, string>, a: readonly OrderRow[], b: readonly OrderRow[]): void {
  ctx.stats.shadowReads++
  const pk = ctx.shape.primaryKey
  const differs = a.length !== b.length || a.some((row, i) => differingColumns(row, b[i]!, ctx.shape.columns).length > 0)
  if (!differs) return
  ctx.stats.shadowMismatches++
  // Keys and column names only: row values never reach the logs.
  const columns = [...new Set(a.flatMap((row, i) => (b[i] ? differingColumns(row, b[i], ctx.shape.columns) : [])))]
  ctx.logger.warn({ ...what, legacyIds: a.map((r) => String(r[pk])).slice(0, 20), shardIds: b.map((r) => String(r[pk])).slice(0, 20), columns, stageVersion: ctx.state.version }, 'shadow read mismatch')
}

async function shadow(ctx: ReadContext, what: Record<string, string>, real: Promise<OrderRow[]>, shard: () => Promise<OrderRow[] | undefined>): Promise<void> {
  const [r, s] = await Promise.allSettled([real, shard()])
  if (r.status === 'rejected') return
  if (s.status === 'rejected') {
    ctx.stats.shadowErrors++
    ctx.logger.warn({ ...what, code: errorCode(s.reason) }, 'shadow read failed')
    return
  }
  if (s.value !== undefined) compare(ctx, what, r.value, s.value)
}

/**
 * Whether the legacy journal holds a row for `orderId`: a write whose copies
 * are not all confirmed yet. The row commits with the primary write and is
 * deleted only after every copy landed, so a write acknowledged before this
 * read either still has its row here or is in its shard.
 */
async function journalOwes(ctx: ReadContext, legacy: Location, orderId: string): Promise<boolean> {
  const [rows] = await poolFor(ctx.rt, legacy.host).query<RowDataPacket[]>(`SELECT 1 FROM ${qualified(legacy.database, JOURNAL_TABLE)} WHERE order_id = ? LIMIT 1`, [orderId])
  return rows.length > 0
}

/** Reads one order from where the stage says (see DualWriteStore.get). */
export async function getOrder(ctx: ReadContext, orderId: string): Promise<OrderRow | undefined> {
  const { config } = ctx.rt
  const route = routeOrderId(config, orderId)
  const legacy = legacyLocation(config)
  if (ctx.state.readPercent <= 0) {
    const real = readAt(ctx, legacy, orderId)
    if (sampled(ctx)) {
      await shadow(ctx, { op: 'get', orderId }, real.then((r) => (r ? [r] : [])), async () => {
        const u = await userShardOf(ctx, orderId)
        return u ? readAt(ctx, u.location, orderId).then((r) => (r ? [r] : [])) : undefined
      })
    }
    return real
  }
  const full = ctx.state.readPercent >= 100
  const u = await userShardOf(ctx, orderId)
  if (!u) return full ? undefined : readAt(ctx, legacy, orderId)
  if (u.userId !== undefined && !readsFromShards(ctx.state, u.userId)) return readAt(ctx, legacy, orderId)
  const legacyPrimary = stagePolicy(ctx.state).writePrimary === 'legacy'
  const [row, owed] = await Promise.all([readAt(ctx, u.location, orderId), legacyPrimary ? journalOwes(ctx, legacy, orderId) : false])
  // While legacy is still the write primary, an order whose copies the journal still owes (a copy
  // that timed out, or one not yet confirmed) is read from legacy: its shard row may be missing
  // (never a 404) or one version behind (never a stale version, which would fail the caller's
  // next conditional write with a VERSION_CONFLICT it did not cause).
  if (owed || (!row && legacyPrimary)) return readAt(ctx, legacy, orderId)
  if (full || route.kind === 'legacy') return row
  // A new id names its shard but not its user: the ramp is by user, so check the row's user.
  if (row && readsFromShards(ctx.state, String(row[ctx.shape.userColumn]))) return row
  const old = await readAt(ctx, legacy, orderId)
  if (old && readsFromShards(ctx.state, String(old[ctx.shape.userColumn]))) return row
  return old
}

async function listAt(ctx: ReadContext, l: Location, column: string, key: string, pos: ListPosition | undefined, limit: number): Promise<OrderRow[]> {
  const { shape } = ctx
  const c = quoteIdent(CREATED_COLUMN)
  const pk = quoteIdent(shape.primaryKey)
  const params: unknown[] = [key]
  let seek = ''
  if (pos) {
    seek = ` AND (${c} < ? OR (${c} = ? AND ${pk} < ?))`
    params.push(pos.createdAt, pos.createdAt, pos.orderId)
  }
  params.push(limit)
  const sql = `SELECT ${selectListOf(shape)} FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(column)} = ?${seek} ORDER BY ${c} DESC, ${pk} DESC LIMIT ?`
  const [rows] = await poolFor(ctx.rt, l.host).query<RowDataPacket[]>(sql, params)
  return rows.map((r) => toOrderRow(r, shape.columns))
}

/** Lists a user's or a merchant's orders newest first from where the stage says (merchant lists ramp by merchant id). */
export async function listOrders(ctx: ReadContext, dim: 'user' | 'merchant', key: string, opts: { limit?: number; cursor?: string } = {}): Promise<OrderPage> {
  const column = dim === 'user' ? ctx.shape.userColumn : ctx.shape.merchantColumn
  if (!ctx.shape.columns.includes(CREATED_COLUMN)) {
    throw new ShardkitError('PRECONDITION_FAILED', `lists need a ${CREATED_COLUMN} column in the legacy table`, { column: CREATED_COLUMN })
  }
  const shardLoc = shardLocation(ctx.rt.config, dim, key)
  const limit = pageLimit(opts.limit)
  const pos = opts.cursor === undefined ? undefined : decodeCursor(opts.cursor)
  const fromShards = readsFromShards(ctx.state, key)
  const real = listAt(ctx, fromShards ? shardLoc : legacyLocation(ctx.rt.config), column, key, pos, limit + 1)
  if (!fromShards && sampled(ctx)) {
    await shadow(ctx, { op: `list-by-${dim}`, [`${dim}Id`]: key }, real, () => listAt(ctx, shardLoc, column, key, pos, limit + 1))
  }
  const rows = await real
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  const nextCursor = rows.length > limit && last ? encodeCursor({ createdAt: String(last[CREATED_COLUMN]), orderId: String(last[ctx.shape.primaryKey]) }) : undefined
  return nextCursor === undefined ? { rows: page } : { rows: page, nextCursor }
}
