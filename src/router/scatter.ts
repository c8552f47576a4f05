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
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { LOGICAL_SHARDS, shardOfKey, type Dimension } from './shard-function.js'
import { usage, type ScatterFilter } from './scatter-plan.js'
import { runScatterPage, type ScatterHooks, type ScatterOptions, type ScatterQuery, type ScatterResult } from './scatter-walk.js'

export type { FilterOp, ScatterFilter, ScatterOrder } from './scatter-plan.js'
export { SCATTER_MAX_LIMIT, SCATTER_DEFAULTS, type ScatterQuery, type ScatterOptions, type FailedShard, type ScatterResult, type ScatterHooks } from './scatter-walk.js'

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
    return runScatterPage(rt, opts, Array.from({ length: LOGICAL_SHARDS }, (_, i) => i), [], hooks)
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
      return runScatterPage(rt, { ...q, dimension: 'user' }, [shard], by)
    }
    if (q.merchantId !== undefined) {
      const shard = shardOfKey(q.merchantId, 'merchant id')
      return runScatterPage(rt, { ...q, dimension: 'merchant' }, [shard], [{ column: legacy.merchantColumn, op: '=', value: String(q.merchantId) }])
    }
    if (q.explicit !== true) {
      throw new ShardkitError('SCATTER_REFUSED', `an orders query without userId or merchantId reads all ${LOGICAL_SHARDS} shards and was refused: give an id, or pass explicit: true`, {})
    }
    return scatter(rt, { ...q, dimension: q.dimension ?? 'user', explicit: true })
  })()
}
