/**
 * One page of a scatter walk: validates the query, reads the shards under the
 * failure policy and merges their rows. First the shards the cursor says are
 * missing are read again from their own positions up to the boundary already
 * passed (their rows come back in `late`), then a k-way merge (MinHeap) runs
 * over every other shard after the boundary; the next cursor carries the new
 * boundary and every shard still owing rows. The contract this keeps is
 * stated in the head of `scatter.ts`; the cursor's form in
 * `scatter-cursor.ts`. Memory stays O(limit): late reads share one `limit`,
 * main reads start near twice a shard's fair share and grow only for shards
 * whose rows are taken.
 */
import { createHash } from 'node:crypto'
import pLimit from 'p-limit'
import type { RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import { redactText } from '../redact.js'
import type { ShardPlacement } from '../config/schema.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { LOGICAL_SHARDS, type Dimension } from './shard-function.js'
import { compareKeys, keysetPredicate, orderByClause } from './keyset.js'
import { decodeWalk, encodeWalk } from './scatter-cursor.js'
import { MinHeap } from './merge.js'
import { readShard, isServerTimeout, ShardReadStopped } from './shard-query.js'
import { checkColumn, shardColumns } from './shard-columns.js'
import { buildFilters, buildOrder, usage, type ScatterFilter, type ScatterOrder } from './scatter-plan.js'

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

/** Runs one page of a validated query over the given logical shards. */
export async function runScatterPage(rt: Runtime, q: ScatterQuery, shards: readonly number[], routedBy: readonly ScatterFilter[], hooks: ScatterHooks = {}): Promise<ScatterResult> {
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

