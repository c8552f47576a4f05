/**
 * The shard function: which of the 120 logical shards a user or merchant id
 * belongs to. The id generator stores this number in every new order id, and
 * the router uses the same function, so the two can never disagree.
 *
 * Every value a legacy key column can hold routes, whatever its type: INT,
 * BIGINT, BIGINT UNSIGNED (up to 2^64-1) and DECIMAL(p,0) up to DECIMAL(20,0),
 * to `key mod 120`, the same number SQL's `MOD(key, 120)` gives. A key that
 * has no shard (NULL, or a negative value of a signed column, for which
 * `MOD` would give a negative number) is *unroutable*: {@link routeKey}
 * says so instead of throwing, so a copy can report the row by its key and
 * go on.
 */
import { ShardkitError } from '../errors.js'

/** 120 logical shards per dimension: it divides evenly over 1..120 hosts by 15 different counts. */
export const LOGICAL_SHARDS = 120
export const DIMENSIONS = ['user', 'merchant'] as const
export type Dimension = (typeof DIMENSIONS)[number]

/** Decimal digits of the widest key column shardkit routes: DECIMAL(20,0), which holds every BIGINT UNSIGNED. */
export const MAX_KEY_DIGITS = 20
const DECIMAL_RE = /^(0|[1-9][0-9]{0,19})$/
const SHARDS = BigInt(LOGICAL_SHARDS)

/**
 * `key mod 120` for a user or merchant id given as a non-negative safe
 * integer, a bigint or a decimal string of up to 20 digits (without sign or
 * leading zeros).
 * @throws ShardkitError `ID_INVALID` naming `what` when the key is not such a value
 * @example shardOfKey('12345') // 105
 * @example shardOfKey('18446744073709551615') // 15 (2^64-1, the largest BIGINT UNSIGNED)
 */
export function shardOfKey(key: number | bigint | string, what = 'key'): number {
  if (typeof key === 'number') {
    if (Number.isSafeInteger(key) && key >= 0) return key % LOGICAL_SHARDS
    throw invalidKey(what, String(key))
  }
  if (typeof key === 'string') {
    if (!DECIMAL_RE.test(key)) throw invalidKey(what, key)
    if (key.length <= 15) return Number(key) % LOGICAL_SHARDS
    return Number(BigInt(key) % SHARDS)
  }
  if (typeof key !== 'bigint' || key < 0n || key.toString().length > MAX_KEY_DIGITS) throw invalidKey(what, String(key))
  return Number(key % SHARDS)
}

/** Why a key value has no shard. */
export type UnroutableReason = 'null' | 'negative' | 'not-an-integer'

/**
 * The shard of a key value as the driver read it from a key column (decimal
 * string, number, bigint or null), or why it has none. Never throws.
 * @example routeKey(null) // { reason: 'null' }
 */
export function routeKey(value: unknown): { shard: number } | { reason: UnroutableReason } {
  if (value === null || value === undefined) return { reason: 'null' }
  const s = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'bigint' ? String(value) : undefined
  if (s !== undefined && DECIMAL_RE.test(s)) return { shard: shardOfKey(s) }
  if (s !== undefined && /^-[1-9][0-9]*$/.test(s)) return { reason: 'negative' }
  return { reason: 'not-an-integer' }
}

/**
 * The SQL condition "this row's key has no shard" for a key column, or ''
 * when none can (a NOT NULL unsigned column). Column names come from the
 * validated topology and arrive quoted.
 */
export function unroutableSql(quotedColumn: string, col: { nullable: boolean; unsigned: boolean }): string {
  const parts: string[] = []
  if (col.nullable) parts.push(`${quotedColumn} IS NULL`)
  if (!col.unsigned) parts.push(`${quotedColumn} < 0`)
  return parts.join(' OR ')
}

function invalidKey(what: string, shown: string): ShardkitError {
  const s = shown.length > 40 ? `${shown.slice(0, 40)}...` : shown
  return new ShardkitError('ID_INVALID', `${what} "${s}" is not valid: give a non-negative integer of at most ${MAX_KEY_DIGITS} decimal digits, without sign or leading zeros`, { argument: what })
}
