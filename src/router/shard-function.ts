/**
 * The shard function: which of the 120 logical shards a user or merchant id
 * belongs to. The id generator stores this number in every new order id, and
 * the router uses the same function, so the two can never disagree.
 */
import { ShardkitError } from '../errors.js'

/** 120 logical shards per dimension: it divides evenly over 1..120 hosts by 15 different counts. */
export const LOGICAL_SHARDS = 120
export const DIMENSIONS = ['user', 'merchant'] as const
export type Dimension = (typeof DIMENSIONS)[number]

const MAX_SIGNED_BIGINT = 2n ** 63n - 1n
const DECIMAL_RE = /^(0|[1-9][0-9]{0,18})$/

/**
 * `key mod 120` for a user or merchant id given as a non-negative safe
 * integer, a bigint or a decimal string up to 2^63-1.
 * @throws ShardkitError `ID_INVALID` naming `what` when the key is not such a value
 * @example shardOfKey('12345') // 105
 */
export function shardOfKey(key: number | bigint | string, what = 'key'): number {
  if (typeof key === 'number') {
    if (Number.isSafeInteger(key) && key >= 0) return key % LOGICAL_SHARDS
    throw invalidKey(what, String(key))
  }
  if (typeof key === 'string') {
    if (!DECIMAL_RE.test(key)) throw invalidKey(what, key)
    if (key.length <= 15) return Number(key) % LOGICAL_SHARDS
    key = BigInt(key)
  }
  if (key < 0n || key > MAX_SIGNED_BIGINT) throw invalidKey(what, String(key))
  return Number(key % BigInt(LOGICAL_SHARDS))
}

function invalidKey(what: string, shown: string): ShardkitError {
  const s = shown.length > 40 ? `${shown.slice(0, 40)}...` : shown
  return new ShardkitError('ID_INVALID', `${what} "${s}" is not valid: give a non-negative integer up to 9223372036854775807 as decimal digits without leading zeros`, { argument: what })
}
