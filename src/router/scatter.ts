/**
 * Scatter-gather: one query over all 120 logical shards of a dimension, with
 * bounded concurrency (p-limit), a per-shard deadline, rows merged in Node
 * in a total order (a k-way merge over each shard's sorted pages), a row cap
 * and keyset pagination through an opaque cursor. Memory stays O(limit): each
 * shard is read in pages that start small (about 2 x limit / shards) and grow
 * only for shards whose rows are actually taken.
 *
 * A query without a shard key is refused (`SCATTER_REFUSED`) unless the
 * caller says `explicit: true`: a scatter costs 120 queries where a routed
 * read costs one. `queryOrders` routes to one shard when it has a user or
 * merchant id and scatters only when asked.
 *
 * A shard that fails or misses its deadline either fails the whole query
 * (`onShardFailure: 'fail'`, the default: `SHARD_TIMEOUT` / `SHARD_FAILED`
 * naming the shard and host) or, under `'partial'`, is listed in
 * `failedShards` and the walk goes on without it. Identifiers come from the
 * validated config or are checked against the shard tables' columns; every
 * value is bound.
 *
 * The contract of a walk under `'partial'` (issue 17): no row is lost and
 * none comes twice.
 * - The cursor keeps, per failed shard, the position it had reached (its last
 *   row returned, or "not started"); `missing` names these shards and
 *   `complete` is false on every page while any is missing.
 * - Each later page first reads every missing shard again from its own
 *   position up to the previous page's boundary (the cursor's key). Those rows
 *   sort before rows already returned, so they cannot be merged in order:
 *   they come in `late`, sorted among themselves, at most about `limit` per
 *   page. After a page with fewer than `limit` rows the main order is over,
 *   and late rows may sort anywhere after their shard's position. A shard whose late rows are all out rejoins the main merge on the
 *   same page, and `complete` turns true on the page where the last missing
 *   shard caught up. `rows` stays in strict total order across the walk.
 * - When the main order has run out but shards are still missing,
 *   `nextCursor` is given only while a missing shard answers (its late rows
 *   keep coming); when every missing shard failed again on this page,
 *   `nextCursor` is undefined and `resumeCursor` lets the caller retry later,
 *   so a loop on `nextCursor` ends even when a host stays down.
 */
import { createHash } from 'node:crypto'
import pLimit from 'p-limit'
import type { RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import { redactText } from '../redact.js'
import type { ShardPlacement } from '../config/schema.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { LOGICAL_SHARDS, shardOfKey, type Dimension } from './shard-function.js'
import { compareKeys, keysetPredicate, orderByClause } from './keyset.js'
import { decodeWalk, encodeWalk } from './scatter-cursor.js'
import { MinHeap } from './merge.js'
import { readShard, isServerTimeout, ShardReadStopped } from './shard-query.js'
import { checkColumn, shardColumns } from './shard-columns.js'
import { buildFilters, buildOrder, usage, type ScatterFilter, type ScatterOrder } from './scatter-plan.js'

export type { FilterOp, ScatterFilter, ScatterOrder } from './scatter-plan.js'

/** The largest row cap one call may ask for. */
export const SCATTER_MAX_LIMIT = 10_000
export const SCATTER_DEFAULTS = { concurrency: 8, shardTimeoutMs: 5_000, onShardFailure: 'fail' } as const

export interface ScatterQuery {
  readonly dimension: Dimension
  /** Columns to return (default all). The order columns are always returned too. */
  readonly columns?: readonly string[]
  readonly where?: readonly ScatterFilter[]
  /** Integer, decimal, DOUBLE or temporal NOT NULL columns (FLOAT is refused: its printed value cannot resume a page). The primary key is appended when absent, making the order total. Default: primary key ascending. */
  readonly orderBy?: readonly ScatterOrder[]
  /** Row cap, 1..10000. */
  readonly limit: number
  /** `nextCursor` of the previous page of the same query. */
  readonly after?: string
  /** Shards queried at once, 1..64 (default 8). */
  readonly concurrency?: number
  /** Deadline per shard query, including the pool wait (default 5000). */
  readonly shardTimeoutMs?: number
  readonly onShardFailure?: 'fail' | 'partial'
  readonly signal?: AbortSignal
}

export interface ScatterOptions extends ScatterQuery {
  /** Required: a query over every shard must be asked for. */
  readonly explicit: true
}

export interface FailedShard {
  readonly shard: number
  readonly host: string
  readonly code: 'SHARD_TIMEOUT' | 'SHARD_FAILED'
  /** The driver's error, passwords redacted. */
  readonly reason: string
}

export interface ScatterResult {
  /** This page's rows, in the query's total order, each after every row of the earlier pages' `rows`. */
  readonly rows: Record<string, unknown>[]
  /**
   * Rows of shards that had failed on an earlier page, read again from where they stopped. Each sorts at or
   * before the previous page's boundary, so it cannot join `rows`; sorted among themselves. Empty unless an
   * earlier page said `complete: false`.
   */
  readonly late: Record<string, unknown>[]
  /** Pass as `after` for the next page; undefined when the walk is done or every missing shard failed again. */
  readonly nextCursor: string | undefined
  /** Set when `nextCursor` is undefined but shards are still `missing`: pass as `after` later to read them again. */
  readonly resumeCursor?: string
  /** Shards read on this page. */
  readonly shardsQueried: number
  /** Shards that failed on this page (policy 'partial'). */
  readonly failedShards: FailedShard[]
  /** Shards (ascending) some of whose rows up to this page's boundary have not been returned yet. */
  readonly missing: number[]
  /** True when no shard is `missing`: every row up to this page's last has been returned, exactly once. */
  readonly complete: boolean
}

/** @internal A test seam: awaited before each shard read, so a test can break a shard's table for real at a chosen read. */
export interface ScatterHooks {
  readonly beforeRead?: (shard: number, phase: 'late' | 'main') => void | Promise<void>
}

type Row = Record<string, unknown>

interface Reader {
  readonly p: ShardPlacement
  buf: Row[]
  pos: number
  page: number
  exhausted: boolean
  /** Key of the last row fetched from this shard. */
  last: readonly unknown[] | undefined
  /** Key of the last row taken from this shard into the page; undefined when none was. */
  taken: readonly unknown[] | undefined
}

function intOption(v: number | undefined, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min || v > max) throw usage(name, `must be an integer from ${min} to ${max}, got ${String(v)}`)
  return v
}

function fingerprint(parts: unknown): string {
  const json = JSON.stringify(parts, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Date ? v.toISOString() : v))
  return createHash('sha256').update(json).digest('base64url').slice(0, 16)
}

function shardError(err: unknown, p: ShardPlacement): ShardkitError {
  const { shard, host, dimension } = p
  const details = { dimension, shard, host }
  // Our own errors (a closed runtime, an unknown host) keep their code.
  if (err instanceof ShardkitError) return err
  if (err instanceof ShardReadStopped && err.reason === 'aborted') return new ShardkitError('ABORTED', 'the scatter query was aborted', details)
  if ((err instanceof ShardReadStopped && err.reason === 'timeout') || isServerTimeout(err)) {
    return new ShardkitError('SHARD_TIMEOUT', `${dimension} shard ${shard} on host ${host} did not answer within the shard timeout; retry, raise shardTimeoutMs, or use onShardFailure: 'partial'`, details, { cause: err, retryable: true })
  }
  const code = (err as { code?: unknown })?.code
  return new ShardkitError('SHARD_FAILED', `${dimension} shard ${shard} on host ${host} failed${typeof code === 'string' ? ` (${code})` : ''}: ${redactText(String((err as Error)?.message ?? err))}`, details, { cause: err, retryable: true })
}

/** Runs a validated query over the given logical shards. */
async function run(rt: Runtime, q: ScatterQuery, shards: readonly number[], routedBy: readonly ScatterFilter[], hooks: ScatterHooks = {}): Promise<ScatterResult> {
  if (q.limit === undefined) throw usage('limit', `is required: the most rows to return, 1 to ${SCATTER_MAX_LIMIT}`)
  const limit = intOption(q.limit, 'limit', 1, SCATTER_MAX_LIMIT, 0)
  const concurrency = intOption(q.concurrency, 'concurrency', 1, 64, SCATTER_DEFAULTS.concurrency)
  const timeoutMs = intOption(q.shardTimeoutMs, 'shardTimeoutMs', 1, 600_000, SCATTER_DEFAULTS.shardTimeoutMs)
  const policy = q.onShardFailure ?? SCATTER_DEFAULTS.onShardFailure
  if (policy !== 'fail' && policy !== 'partial') throw usage('onShardFailure', 'must be "fail" or "partial"')
  if (q.where !== undefined && !Array.isArray(q.where)) throw usage('where', 'must be an array of { column, op, value }')
  if (q.orderBy !== undefined && !Array.isArray(q.orderBy)) throw usage('orderBy', 'must be an array of { column, direction }')
  if (q.columns !== undefined && !Array.isArray(q.columns)) throw usage('columns', 'must be an array of column names')
  if (q.signal?.aborted) throw new ShardkitError('ABORTED', 'the scatter query was aborted before it started')

  const cols = await shardColumns(rt, q.dimension, timeoutMs)
  const where = [...routedBy, ...(q.where ?? [])]
  const filters = buildFilters(cols, where)
  const order = buildOrder(cols, q.orderBy ?? [], rt.config.legacy.primaryKey)
  const selected = new Set((q.columns ?? [...cols.keys()]).map((c, i) => checkColumn(cols, c, `columns[${i}]`).name))
  for (const o of order) selected.add(o.column)
  const fp = fingerprint({ d: q.dimension, s: shards.length === LOGICAL_SHARDS ? 'all' : shards, w: where, o: order.map((o) => [o.column, o.direction]) })
  const state = q.after === undefined ? { after: undefined, ended: false, lagging: new Map() } : decodeWalk(q.after, fp, order, shards)
  const boundary = state.after

  const selectList = [...selected].map(quoteIdent).join(', ')
  const orderSql = orderByClause(order)
  const keyOf = (row: Row) => order.map((o) => row[o.column])
  const placement = (shard: number) => rt.config.dimensions[q.dimension].shards[shard]!
  const failed: FailedShard[] = []
  const queried = new Set<number>()
  /** Shards still owing rows, each at its position; grows when a shard fails, shrinks when one catches up. */
  const lagging = new Map<number, readonly unknown[] | undefined>(state.lagging)
  const gate = pLimit(concurrency)
  const all = async (tasks: (() => Promise<void>)[]) => {
    try {
      await Promise.all(tasks.map((t) => gate(t)))
    } catch (err) {
      gate.clearQueue()
      throw err
    }
  }

  /** One bounded read after `from` (and at or before `upTo`); undefined when the shard failed and the policy is partial. */
  const read = async (p: ShardPlacement, phase: 'late' | 'main', from: readonly unknown[] | undefined, upTo: readonly unknown[] | undefined, n: number): Promise<Row[] | undefined> => {
    const conds = [...filters.sql]
    const params = [...filters.params]
    if (from !== undefined) {
      const ks = keysetPredicate(order, from)
      conds.push(ks.sql)
      params.push(...ks.params)
    }
    if (upTo !== undefined) {
      // NOT (after upTo): the order columns are NOT NULL, so this is exactly "at or before upTo".
      const ks = keysetPredicate(order, upTo)
      conds.push(`NOT ${ks.sql}`)
      params.push(...ks.params)
    }
    const sql = `SELECT ${selectList} FROM ${qualified(p.database, p.table)}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${orderSql} LIMIT ${n}`
    queried.add(p.shard)
    try {
      await hooks.beforeRead?.(p.shard, phase)
      return (await readShard({ pool: rt.host(p.host), sql, params, timeoutMs, signal: q.signal })) as RowDataPacket[] as Row[]
    } catch (err) {
      const e = shardError(err, p)
      if (policy === 'fail' || (e.code !== 'SHARD_TIMEOUT' && e.code !== 'SHARD_FAILED')) throw e
      failed.push({ shard: p.shard, host: p.host, code: e.code as FailedShard['code'], reason: redactText(String((err as Error)?.message ?? err)) })
      return undefined
    }
  }

  // 1. Shards that failed earlier, read again from their own positions up to the boundary already passed.
  const late: Row[] = []
  if (!state.ended && boundary === undefined) {
    lagging.clear() // nothing has been passed yet: they simply take part in the main merge
  } else if (lagging.size > 0) {
    const share = Math.max(1, Math.ceil(limit / lagging.size))
    await all(
      [...lagging].map(([shard, pos]) => async () => {
        const got = await read(placement(shard), 'late', pos, state.ended ? undefined : boundary, share)
        if (got === undefined) return
        late.push(...got)
        // Fewer than asked: every row it owed is out; it rejoins the main merge at the boundary.
        if (got.length < share) lagging.delete(shard)
        else lagging.set(shard, keyOf(got[got.length - 1]!))
      }),
    )
    late.sort((a, b) => compareKeys(order, keyOf(a), keyOf(b)))
  }

  // 2. The main merge over every shard that is not lagging, after the boundary.
  const readers: Reader[] = state.ended
    ? []
    : shards
        .filter((s) => !lagging.has(s))
        .map((s) => ({
          p: placement(s),
          buf: [],
          pos: 0,
          // About twice a shard's fair share of the page, plus slack; grows x4 for shards that run dry.
          page: Math.min(limit + 1, Math.ceil(limit / shards.length) * 2 + 8),
          exhausted: false,
          last: boundary,
          taken: undefined,
        }))
  let taken = 0

  /** Fetches the reader's next page; false when the shard failed (it now lags at the last row it gave). */
  const fetch = async (r: Reader): Promise<boolean> => {
    // Never fetch more than the rows still missing (+1 to learn whether the shard has more).
    const n = Math.min(r.page, limit - taken + 1)
    const rows = await read(r.p, 'main', r.last, undefined, n)
    if (rows === undefined) {
      lagging.set(r.p.shard, r.taken ?? boundary)
      r.buf = []
      r.exhausted = true
      return false
    }
    r.buf = rows
    r.pos = 0
    r.exhausted = rows.length < n
    if (rows.length > 0) r.last = keyOf(rows[rows.length - 1]!)
    r.page = Math.min(limit + 1, r.page * 4)
    return true
  }

  await all(readers.map((r) => async () => void (await fetch(r))))

  const heap = new MinHeap<Reader>((a, b) => compareKeys(order, keyOf(a.buf[a.pos]!), keyOf(b.buf[b.pos]!)))
  for (const r of readers) if (r.buf.length > 0) heap.push(r)
  const rows: Row[] = []
  while (rows.length < limit && heap.size > 0) {
    const r = heap.pop()!
    const row = r.buf[r.pos++]!
    rows.push(row)
    r.taken = keyOf(row)
    taken = rows.length
    if (r.pos < r.buf.length) heap.push(r)
    else {
      r.buf = []
      // This shard's next row may be the smallest of all: read it before taking another row.
      if (!r.exhausted && rows.length < limit && (await fetch(r)) && r.buf.length > 0) heap.push(r)
    }
  }
  const mainMore = rows.length === limit && readers.some((r) => r.pos < r.buf.length || !r.exhausted)
  const last = rows.length > 0 ? keyOf(rows[rows.length - 1]!) : boundary
  const failedNow = new Set(failed.map((f) => f.shard))
  // Past the main order's end, go on only while a missing shard answers: a loop on nextCursor must end when a host stays down.
  // "Ended" only after a short page, so a caller can tell which late rows may sort past the last boundary.
  const cursor = lagging.size > 0 || mainMore ? encodeWalk(fp, { after: last, ended: state.ended || rows.length < limit, lagging }) : undefined
  const goOn = mainMore || [...lagging.keys()].some((s) => !failedNow.has(s))
  return {
    rows,
    late,
    nextCursor: goOn ? cursor : undefined,
    ...(!goOn && cursor !== undefined ? { resumeCursor: cursor } : {}),
    shardsQueried: queried.size,
    failedShards: failed.sort((a, b) => a.shard - b.shard),
    missing: [...lagging.keys()].sort((a, b) => a - b),
    complete: lagging.size === 0,
  }
}

/**
 * Queries every logical shard of a dimension and merges the rows in `orderBy` order.
 * @throws ShardkitError `SCATTER_REFUSED` without `explicit: true`; `USAGE` naming a bad option;
 *   `SHARD_TIMEOUT` / `SHARD_FAILED` naming the shard (policy 'fail'); `ABORTED` on the signal
 * @example
 * const page = await scatter(rt, { dimension: 'merchant', where: [{ column: 'status', op: '=', value: 'paid' }],
 *   orderBy: [{ column: 'created_at', direction: 'desc' }], limit: 100, explicit: true })
 * const next = await scatter(rt, { ...sameOptions, after: page.nextCursor })
 */
export function scatter(rt: Runtime, opts: ScatterOptions): Promise<ScatterResult> {
  return scatterWithHooks(rt, opts, {})
}

/** @internal {@link scatter} with a test seam (not exported from the package). */
export function scatterWithHooks(rt: Runtime, opts: ScatterOptions, hooks: ScatterHooks): Promise<ScatterResult> {
  return (async () => {
    if ((opts as { explicit?: unknown })?.explicit !== true) {
      throw new ShardkitError('SCATTER_REFUSED', `a query over all ${LOGICAL_SHARDS} shards was refused: pass explicit: true to scatter, or give a user or merchant id (queryOrders) to read one shard`, { dimension: String(opts?.dimension) })
    }
    if (opts.dimension !== 'user' && opts.dimension !== 'merchant') throw usage('dimension', 'must be "user" or "merchant"')
    return run(rt, opts, Array.from({ length: LOGICAL_SHARDS }, (_, i) => i), [], hooks)
  })()
}

export type OrdersQuery = Omit<ScatterQuery, 'dimension'> & {
  readonly userId?: string | number
  readonly merchantId?: string | number
  /** Dimension to scatter over when no id is given (default 'user'). */
  readonly dimension?: Dimension
  /** Allows a scatter when neither id is given. */
  readonly explicit?: boolean
}

/**
 * Reads orders through the router: one shard when `userId` (user dimension) or
 * `merchantId` (merchant dimension) is given, filtered by that id; every shard
 * of `dimension` only with `explicit: true`.
 * @throws ShardkitError `SCATTER_REFUSED` without an id and without `explicit: true`; else as {@link scatter}
 * @example await queryOrders(rt, { merchantId: '42', orderBy: [{ column: 'created_at', direction: 'desc' }], limit: 50 })
 */
export function queryOrders(rt: Runtime, q: OrdersQuery): Promise<ScatterResult> {
  return (async () => {
    const { legacy } = rt.config
    if (q.userId !== undefined) {
      const shard = shardOfKey(q.userId, 'user id')
      const by: ScatterFilter[] = [{ column: legacy.userColumn, op: '=', value: String(q.userId) }]
      if (q.merchantId !== undefined) by.push({ column: legacy.merchantColumn, op: '=', value: String(q.merchantId) })
      return run(rt, { ...q, dimension: 'user' }, [shard], by)
    }
    if (q.merchantId !== undefined) {
      const shard = shardOfKey(q.merchantId, 'merchant id')
      return run(rt, { ...q, dimension: 'merchant' }, [shard], [{ column: legacy.merchantColumn, op: '=', value: String(q.merchantId) }])
    }
    if (q.explicit !== true) {
      throw new ShardkitError('SCATTER_REFUSED', `an orders query without userId or merchantId reads all ${LOGICAL_SHARDS} shards and was refused: give an id, or pass explicit: true`, {})
    }
    return scatter(rt, { ...q, dimension: q.dimension ?? 'user', explicit: true })
  })()
}
