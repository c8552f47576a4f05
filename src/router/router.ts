/**
 * The router: where a user's, a merchant's or an order's row lives.
 * User and merchant ids and new order ids route synchronously (pure
 * arithmetic over the validated placement); legacy order ids (at or below
 * `legacy.idCeiling`) route through the `order_lookup` table that backfill
 * and dual writes fill. An id that is in neither is `ROUTE_NOT_FOUND`,
 * never a guess.
 */
import { ShardkitError } from '../errors.js'
import type { ShardkitConfig } from '../config/schema.js'
import type { Runtime } from '../runtime/runtime.js'
import { assertIdSyntax, compareIds, shardFieldUnchecked } from '../idgen/layout.js'
import { readLookup } from '../dualwrite/lookup.js'
import { LOGICAL_SHARDS, shardOfKey, type Dimension } from './shard-function.js'

export type RouteKey = { readonly userId: string | number } | { readonly merchantId: string | number } | { readonly orderId: string }

export interface Route {
  readonly dimension: Dimension
  readonly logicalShard: number
  readonly host: string
  readonly database: string
  readonly table: string
  /** How the shard was found. */
  readonly via: 'user-id' | 'merchant-id' | 'order-id-shard-field' | 'legacy-lookup'
}

function place(config: ShardkitConfig, dimension: Dimension, shard: number, via: Route['via']): Route {
  const p = config.dimensions[dimension].shards[shard]!
  return { dimension, logicalShard: shard, host: p.host, database: p.database, table: p.table, via }
}

/**
 * Routes a user id, a merchant id or a new order id without I/O.
 * @throws ShardkitError `ID_INVALID` for a malformed key; `ROUTE_NOT_FOUND` for a legacy order id (use `resolveRoute`)
 * @example routeSync(config, { userId: '12345' }).logicalShard // 105
 */
export function routeSync(config: ShardkitConfig, key: RouteKey): Route {
  if ('userId' in key) return place(config, 'user', shardOfKey(key.userId, 'user id'), 'user-id')
  if ('merchantId' in key) return place(config, 'merchant', shardOfKey(key.merchantId, 'merchant id'), 'merchant-id')
  assertIdSyntax(key.orderId)
  if (compareIds(key.orderId, config.legacy.idCeiling) <= 0) {
    throw new ShardkitError('ROUTE_NOT_FOUND', `order id ${key.orderId} is a legacy id (at or below ${config.legacy.idCeiling}); it routes through the lookup table: use resolveRoute`, { orderId: key.orderId })
  }
  const shard = shardFieldUnchecked(key.orderId)
  if (shard >= LOGICAL_SHARDS) {
    throw new ShardkitError('ID_INVALID', `order id ${key.orderId} has shard field ${shard}; new order ids carry a user shard from 0 to ${LOGICAL_SHARDS - 1}`, { orderId: key.orderId })
  }
  return place(config, 'user', shard, 'order-id-shard-field')
}

/**
 * Routes any key; legacy order ids through `order_lookup` in the control database.
 * @throws ShardkitError `ROUTE_NOT_FOUND` when a legacy id is not in the lookup
 */
export async function resolveRoute(rt: Runtime, key: RouteKey): Promise<Route> {
  if (!('orderId' in key)) return routeSync(rt.config, key)
  assertIdSyntax(key.orderId)
  if (compareIds(key.orderId, rt.config.legacy.idCeiling) > 0) return routeSync(rt.config, key)
  const row = await readLookup(rt, key.orderId)
  if (!row) {
    throw new ShardkitError('ROUTE_NOT_FOUND', `legacy order id ${key.orderId} is not in the lookup table; backfill and dual writes fill it: run \`shardctl backfill\` or check the id`, { orderId: key.orderId })
  }
  return place(rt.config, 'user', shardOfKey(row.userId), 'legacy-lookup')
}
