/**
 * The order-id bit layout (pure: no clock, no I/O).
 *
 * ```
 *  63 | 62 ................. 22 | 21 ..... 14 | 13 .... 7 | 6 ..... 0
 *   0 | ms since 2025-01-01Z   | worker (8)  | seq (7)   | user shard (7)
 *     | 41 bits, to 2094-09-07 | 256 leases  | 128 / ms  | 0..119
 * ```
 * The top bit stays 0 so ids fit a signed BIGINT. The user shard is stored
 * as a number (120 is not a power of two, so low bits of user_id would not do).
 * Ids travel as decimal strings; bigint is used inside.
 */
import { ShardkitError } from '../errors.js'
import { LOGICAL_SHARDS } from '../router/shard-function.js'

/** 2025-01-01T00:00:00.000Z */
export const ID_EPOCH_MS = Date.UTC(2025, 0, 1)
/** Milliseconds since the epoch: 69.7 years. */
export const TIME_BITS = 41
/** Leased worker numbers: 256 generators at once. */
export const WORKER_BITS = 8
/** Ids per millisecond per worker: 128. */
export const SEQUENCE_BITS = 7
/** The user's logical shard, 0..119 (120..127 never appear in a valid id). */
export const SHARD_BITS = 7

/** The largest time field (ms since the epoch). */
export const MAX_TIME = 2 ** TIME_BITS - 1
/** The largest worker number (255). */
export const MAX_WORKER = 2 ** WORKER_BITS - 1
/** The largest sequence number within a millisecond (127). */
export const MAX_SEQUENCE = 2 ** SEQUENCE_BITS - 1
/** The last millisecond an id can carry: 2094-09-07T15:47:35.551Z. */
export const ID_TIME_LIMIT_MS = ID_EPOCH_MS + MAX_TIME

/** The largest id: 2^63-1, the largest signed BIGINT. */
export const MAX_ID = 2n ** 63n - 1n
const MAX_ID_STRING = MAX_ID.toString()

/** The fields of a new-style order id. */
export interface IdFields {
  /** Milliseconds since {@link ID_EPOCH_MS}. */
  readonly time: number
  readonly worker: number
  readonly sequence: number
  /** The owning user's logical shard, 0..119. */
  readonly shard: number
}

/** A decoded id, with the time as a date. */
export interface DecodedId extends IdFields {
  readonly id: string
  readonly timestampMs: number
  readonly iso: string
}

function checkField(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new ShardkitError('ID_INVALID', `${name} ${v} is out of range: it must be an integer from 0 to ${max}`, { field: name })
  }
}

/**
 * Packs fields into a decimal id string.
 * @throws ShardkitError `ID_INVALID` naming the field that is out of range
 */
export function encodeId(f: IdFields): string {
  checkField('time', f.time, MAX_TIME)
  checkField('worker', f.worker, MAX_WORKER)
  checkField('sequence', f.sequence, MAX_SEQUENCE)
  checkField('shard', f.shard, LOGICAL_SHARDS - 1)
  return encodeIdUnchecked(f.time, f.worker, f.sequence, f.shard)
}

/**
 * Packs fields that the caller has already range-checked. The generator's hot
 * path: Number arithmetic only (no BigInt), exact because every intermediate
 * stays below 2^53. The id is written as `p * 10^6 + q` with `q < 10^6`:
 * `time * 2^22 = (th * 10^6 + tl) * 2^22`, so `p = th * 2^22` (< 9.3e12) and
 * `q = tl * 2^22 + low` (< 4.2e12) before carrying q's millions into p.
 */
export function encodeIdUnchecked(time: number, worker: number, sequence: number, shard: number): string {
  const low = worker * 16384 + sequence * 128 + shard
  const th = Math.floor(time / 1e6)
  let p = th * 4194304
  let q = (time - th * 1e6) * 4194304 + low
  const carry = Math.floor(q / 1e6)
  p += carry
  q -= carry * 1e6
  return p === 0 ? String(q) : String(p) + String(1e6 + q).slice(1)
}

/**
 * Checks that `id` is a decimal order id in 1..2^63-1 with no sign, spaces or
 * leading zeros. Says what was wrong.
 * @throws ShardkitError `ID_INVALID`
 */
export function assertIdSyntax(id: unknown, what = 'order id'): asserts id is string {
  if (typeof id !== 'string') {
    throw new ShardkitError('ID_INVALID', `${what} must be a decimal string (got ${typeof id}); ids above 2^53 lose digits as JSON numbers`, { argument: what })
  }
  const shown = id.length > 40 ? `${id.slice(0, 40)}...` : id
  if (id.length === 0) throw new ShardkitError('ID_INVALID', `${what} is empty: give the decimal digits of the id`, { argument: what })
  if (id[0] === '-') throw new ShardkitError('ID_INVALID', `${what} "${shown}" is negative: ids are from 1 to ${MAX_ID_STRING}`, { argument: what })
  if (!/^[0-9]+$/.test(id)) throw new ShardkitError('ID_INVALID', `${what} "${shown}" has characters that are not digits: give only 0-9`, { argument: what })
  if (id[0] === '0') throw new ShardkitError('ID_INVALID', `${what} "${shown}" has a leading zero (or is zero): write it without leading zeros, from 1 to ${MAX_ID_STRING}`, { argument: what })
  if (id.length > 19 || (id.length === 19 && id > MAX_ID_STRING)) {
    throw new ShardkitError('ID_INVALID', `${what} "${shown}" is above 2^63-1 (${MAX_ID_STRING}), the largest signed BIGINT`, { argument: what })
  }
}

/**
 * The user-shard field of a new-style id, without building a BigInt:
 * 10^7 is a multiple of 128, so the low 7 bits are the last 7 digits mod 128.
 * No validation: the router's hot path calls it after {@link assertIdSyntax}.
 */
export function shardFieldUnchecked(id: string): number {
  const tail = id.length > 7 ? id.slice(-7) : id
  return Number(tail) & 127
}

/** Splits a syntactically valid id into its time field and its low 22 bits with Number arithmetic only. */
function splitId(id: string): { time: number; low: number } {
  // id = hi * 10^6 + lo with hi < 9.3e12; hi = h1 * 2^22 + h0, so
  // id = h1 * 10^6 * 2^22 + (h0 * 10^6 + lo), and the bracket (< 4.2e12) splits by 2^22.
  const n = id.length
  const hi = n > 6 ? Number(id.slice(0, n - 6)) : 0
  const lo = n > 6 ? Number(id.slice(n - 6)) : Number(id)
  const h1 = Math.floor(hi / 4194304)
  const r = (hi - h1 * 4194304) * 1e6 + lo
  const rHigh = Math.floor(r / 4194304)
  return { time: h1 * 1e6 + rHigh, low: r - rHigh * 4194304 }
}

function badShard(id: string, shard: number, what: string): ShardkitError {
  return new ShardkitError('ID_INVALID', `${what} "${id}" has shard field ${shard}; new order ids carry a user shard from 0 to ${LOGICAL_SHARDS - 1}, so this is not one (a legacy id must be at or below the configured ceiling)`, { argument: what })
}

/**
 * Decodes a new-style id.
 * @throws ShardkitError `ID_INVALID` if the string is not an id or its shard field is 120..127
 */
export function decodeId(id: string, what = 'order id'): DecodedId {
  assertIdSyntax(id, what)
  const { time, low } = splitId(id)
  const shard = low & 127
  if (shard >= LOGICAL_SHARDS) throw badShard(id, shard, what)
  const timestampMs = ID_EPOCH_MS + time
  return {
    id,
    time,
    worker: low >>> 14,
    sequence: (low >>> 7) & 127,
    shard,
    timestampMs,
    iso: new Date(timestampMs).toISOString(),
  }
}

/**
 * The owning user's logical shard of a new-style id: the router's hot path.
 * Validates the string (no BigInt is built) and the shard field.
 * @throws ShardkitError `ID_INVALID` if the string is not an id or its shard field is 120..127
 * @example shardOfId(newId) === shardOfKey(userId)
 */
export function shardOfId(id: string, what = 'order id'): number {
  assertIdSyntax(id, what)
  const shard = shardFieldUnchecked(id)
  if (shard >= LOGICAL_SHARDS) throw badShard(id, shard, what)
  return shard
}

/** Compares two id strings numerically (shorter is smaller; same length compares lexically). */
export function compareIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * `legacy` when the id is at or below the legacy ceiling, else `new`.
 * @throws ShardkitError `ID_INVALID` if `id` is not a valid id string
 */
export function classifyId(id: string, legacyCeiling: string): 'legacy' | 'new' {
  assertIdSyntax(id)
  return compareIds(id, legacyCeiling) <= 0 ? 'legacy' : 'new'
}
