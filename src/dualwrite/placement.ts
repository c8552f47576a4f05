/**
 * Where an order's copies live (pure: config in, locations out). The user
 * copy lives at `dimensions.user.shards[userId mod 120]`, the merchant copy at
 * `dimensions.merchant.shards[merchantId mod 120]`, the legacy copy in the
 * legacy table. A new order id carries its user's shard in its low bits, so
 * it routes without a lookup; a legacy id (at or below `legacy.idCeiling`)
 * needs the `order_lookup` table (see lookup.ts).
 */
import type { ShardkitConfig, ShardPlacement } from '../config/schema.js'
import { ShardkitError } from '../errors.js'
import { assertIdSyntax, compareIds, shardFieldUnchecked } from '../idgen/layout.js'
import { LOGICAL_SHARDS, shardOfKey } from '../router/shard-function.js'

/** One side of the dual write. */
export type Side = 'legacy' | 'user' | 'merchant'

/** A physical table holding one copy of an order. `host` is a config host name, or `legacy` for the legacy server. */
export interface Location {
  readonly side: Side
  readonly host: string
  readonly database: string
  readonly table: string
}

/** A database that can be a write primary, and so holds a journal. */
export interface PrimaryDatabase {
  /** `legacy`, or `<host>/<database>` for a user-dimension database. */
  readonly name: string
  readonly side: 'legacy' | 'user'
  /** Config host name, or `legacy`. */
  readonly host: string
  readonly database: string
}

/** The reserved host name of the legacy server in {@link Location}. */
export const LEGACY_HOST = 'legacy'

/** The legacy table as a location. */
export function legacyLocation(config: ShardkitConfig): Location {
  return { side: 'legacy', host: LEGACY_HOST, database: config.legacy.database, table: config.legacy.table }
}

function fromPlacement(p: ShardPlacement): Location {
  return { side: p.dimension, host: p.host, database: p.database, table: p.table }
}

/**
 * The shard table of a user or merchant key.
 * @throws ShardkitError `ID_INVALID` when the key is not a decimal id
 */
export function shardLocation(config: ShardkitConfig, side: 'user' | 'merchant', key: string): Location {
  const p = config.dimensions[side].shards[shardOfKey(key, side === 'user' ? config.legacy.userColumn : config.legacy.merchantColumn)]
  if (!p) throw new ShardkitError('INTERNAL', `no placement for a ${side} shard; the config is not validated`, { side })
  return fromPlacement(p)
}

/** The user shard table of a logical shard number. */
export function userShardLocation(config: ShardkitConfig, shard: number): Location {
  const p = config.dimensions.user.shards[shard]
  if (!p) throw new ShardkitError('INTERNAL', `no placement for user shard ${shard}`, { shard })
  return fromPlacement(p)
}

/** Where the copy of an order with these keys lives on one side. */
export function locationFor(config: ShardkitConfig, side: Side, keys: { userId: string; merchantId: string }): Location {
  if (side === 'legacy') return legacyLocation(config)
  return shardLocation(config, side, side === 'user' ? keys.userId : keys.merchantId)
}

/** Stable key of a location, for sets and maps. */
export function locationKey(l: Location): string {
  return `${l.host}/${l.database}/${l.table}`
}

/** The primary database a location belongs to (legacy, or its user-dimension database). */
export function primaryOf(l: Location): PrimaryDatabase {
  if (l.side === 'legacy') return { name: LEGACY_HOST, side: 'legacy', host: LEGACY_HOST, database: l.database }
  if (l.side !== 'user') throw new ShardkitError('INTERNAL', 'the merchant dimension is never a write primary', { side: l.side })
  return { name: `${l.host}/${l.database}`, side: 'user', host: l.host, database: l.database }
}

/** Every database that can be a write primary: legacy, then each distinct user-dimension database in shard order. */
export function primaryDatabases(config: ShardkitConfig): PrimaryDatabase[] {
  const out: PrimaryDatabase[] = [primaryOf(legacyLocation(config))]
  const seen = new Set<string>()
  for (const p of config.dimensions.user.shards) {
    const d = primaryOf(fromPlacement(p))
    if (!seen.has(d.name)) {
      seen.add(d.name)
      out.push(d)
    }
  }
  return out
}

/**
 * How an order id routes to the user dimension: a new id carries its user
 * shard; a legacy id needs `order_lookup`.
 * @throws ShardkitError `ID_INVALID` when the id is malformed or its shard field is 120..127
 */
export function routeOrderId(config: ShardkitConfig, orderId: string): { kind: 'new'; shard: number } | { kind: 'legacy' } {
  assertIdSyntax(orderId)
  if (compareIds(orderId, config.legacy.idCeiling) <= 0) return { kind: 'legacy' }
  const shard = shardFieldUnchecked(orderId)
  if (shard >= LOGICAL_SHARDS) {
    throw new ShardkitError('ID_INVALID', `order id "${orderId}" is above the legacy ceiling but its shard field is ${shard}; new order ids carry a user shard from 0 to ${LOGICAL_SHARDS - 1}`, {
      argument: 'order id',
    })
  }
  return { kind: 'new', shard }
}

/**
 * Checks that a new order id carries the shard of its user, so that routing
 * by order id and by user id always agree.
 * @throws ShardkitError `ID_INVALID` when they disagree
 */
export function assertIdMatchesUser(config: ShardkitConfig, orderId: string, userId: string): void {
  const r = routeOrderId(config, orderId)
  if (r.kind === 'new') {
    const userShard = shardOfKey(userId, config.legacy.userColumn)
    if (r.shard !== userShard) {
      throw new ShardkitError('ID_INVALID', `order id "${orderId}" carries user shard ${r.shard} but its user is in shard ${userShard}; issue order ids with the user's id (IdGenerator.next(userId))`, {
        argument: 'order id',
        idShard: r.shard,
        userShard,
      })
    }
  }
}

/**
 * The locations a replay must reconcile for one order on one side: where the
 * primary's row belongs now (if it exists) and where the journaled keys put
 * it (a merchant change leaves a copy behind at the previous merchant's shard).
 * Each comes with what to do there: `upsert` the primary's row or `delete` it.
 */
export function reconcilePlan(
  config: ShardkitConfig,
  side: Side,
  current: { userId: string; merchantId: string } | undefined,
  journaled: readonly { userId: string; merchantId: string }[],
): Array<{ location: Location; action: 'upsert' | 'delete' }> {
  const target = current ? locationFor(config, side, current) : undefined
  const plan = new Map<string, { location: Location; action: 'upsert' | 'delete' }>()
  if (target) plan.set(locationKey(target), { location: target, action: 'upsert' })
  for (const k of journaled) {
    const l = locationFor(config, side, k)
    if (!plan.has(locationKey(l))) plan.set(locationKey(l), { location: l, action: 'delete' })
  }
  return [...plan.values()]
}
