/**
 * Runs a {@link MergeSpec} over per-shard results (rows as arrays, as mysql2
 * returns them with `rowsAsArray`): concatenate or re-group, combine the
 * aggregates, sort, skip and keep. Values keep the driver's types: BIGINT and
 * DECIMAL as decimal strings (added exactly), DATETIME as Date or text.
 * Strings compare case-insensitively by code unit (the `_ci` collations for
 * letters and digits; other collation orders are not modelled). Pure.
 */
import { ShardkitError } from '../errors.js'
import type { ColumnRef, MergeSpec } from './merge-spec.js'

/** A result field: its name and the MySQL protocol type code (mysql2's `columnType`). */
export interface ResultField {
  readonly name: string
  readonly columnType?: number
  readonly type?: number
}

/** One shard's result. */
export interface ShardRows {
  readonly fields: readonly ResultField[]
  readonly rows: readonly (readonly unknown[])[]
}

// DECIMAL, TINY, SHORT, LONG, FLOAT, DOUBLE, LONGLONG, INT24, YEAR, NEWDECIMAL
const NUMERIC_TYPES = new Set([0, 1, 2, 3, 4, 5, 8, 9, 13, 246])
const DECIMAL_TEXT = /^-?\d+(\.\d+)?$/

const fraction = (s: string): number => s.split('.')[1]?.length ?? 0

/** A decimal text as an integer scaled by 10^scale. */
function scaled(s: string, scale: number): bigint {
  const [i, f = ''] = s.replace('-', '').split('.')
  const v = BigInt(i! + f.padEnd(scale, '0'))
  return s.startsWith('-') ? -v : v
}

/** Exact sum of two decimal values (decimal strings or numbers); null is the empty sum. */
function addDecimal(a: unknown, b: unknown): unknown {
  if (a === null || a === undefined) return b
  if (b === null || b === undefined) return a
  if (typeof a === 'number' && typeof b === 'number') return a + b
  const [x, y] = [String(a), String(b)]
  if (!DECIMAL_TEXT.test(x) || !DECIMAL_TEXT.test(y)) return Number(a) + Number(b)
  const scale = Math.max(fraction(x), fraction(y))
  const sum = scaled(x, scale) + scaled(y, scale)
  const digits = (sum < 0n ? -sum : sum).toString().padStart(scale + 1, '0')
  return (sum < 0n ? '-' : '') + (scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits)
}

/** Orders two values as the server would for a column of `numeric` type: NULL first, numbers by value, text case-insensitively. */
export function compareValues(a: unknown, b: unknown, numeric: boolean): number {
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : -1
  if (b === null || b === undefined) return 1
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime()
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return Buffer.compare(a, b)
  if (typeof a === 'number' && typeof b === 'number') return a - b
  if (numeric || typeof a === 'number' || typeof b === 'number') {
    const [x, y] = [String(a), String(b)]
    if (!DECIMAL_TEXT.test(x) || !DECIMAL_TEXT.test(y)) return Number(a) - Number(b)
    const scale = Math.max(fraction(x), fraction(y))
    const d = scaled(x, scale) - scaled(y, scale)
    return d < 0n ? -1 : d > 0n ? 1 : 0
  }
  const x = String(a).toLowerCase()
  const y = String(b).toLowerCase()
  return x < y ? -1 : x > y ? 1 : 0
}

/** The key text of a value for re-grouping (equal under the comparison above). */
function groupKey(v: unknown): string {
  if (v === null || v === undefined) return '\u0000'
  if (v instanceof Date) return 'D' + v.getTime()
  if (Buffer.isBuffer(v)) return 'B' + v.toString('hex')
  return 'S' + String(v).toLowerCase()
}

function resolve(ref: ColumnRef, fields: readonly ResultField[]): number {
  if ('index' in ref) {
    if (ref.index < fields.length) return ref.index
  } else {
    const i = fields.findIndex((f) => f.name.toLowerCase() === ref.name.toLowerCase())
    if (i >= 0) return i
  }
  throw new ShardkitError('SQL_INPUT_INVALID', `the merge names result column ${'index' in ref ? `#${ref.index + 1}` : `"${ref.name}"`}, which the shards' results do not have: run the plan's per-shard SQL unchanged`, { column: 'index' in ref ? ref.index : ref.name })
}

const bits = (op: 'bit_and' | 'bit_or' | 'bit_xor', a: unknown, b: unknown): unknown => {
  if (a === null || a === undefined) return b
  if (b === null || b === undefined) return a
  const [x, y] = [BigInt(String(a)), BigInt(String(b))]
  const r = op === 'bit_and' ? x & y : op === 'bit_or' ? x | y : x ^ y
  return typeof a === 'number' ? Number(r) : r.toString()
}

/**
 * Merges per-shard rows into the result one database would give.
 * @throws ShardkitError `SQL_INPUT_INVALID` when a column the spec names is not in the results
 * @example mergeShardRows(plan.mergePlan, results).rows
 */
export function mergeShardRows(spec: MergeSpec, results: readonly ShardRows[]): ShardRows {
  const fields = results.find((r) => r.fields.length > 0)?.fields ?? results[0]?.fields ?? []
  let rows: unknown[][] = results.flatMap((r) => r.rows.map((row) => [...row]))
  if (spec.kind === 'groups') {
    const keyAt = spec.groupBy.map((g) => resolve(g, fields))
    const combine = spec.combine ?? []
    const groups = new Map<string, unknown[]>()
    for (const row of rows) {
      const key = keyAt.map((i) => groupKey(row[i])).join('\u0001')
      const acc = groups.get(key)
      if (!acc) { groups.set(key, row); continue }
      combine.forEach((op, i) => {
        const numeric = NUMERIC_TYPES.has(fields[i]?.columnType ?? fields[i]?.type ?? -1)
        if (op === 'sum') acc[i] = addDecimal(acc[i], row[i])
        else if (op === 'min') { if (acc[i] === null || (row[i] !== null && compareValues(row[i], acc[i], numeric) < 0)) acc[i] = row[i] }
        else if (op === 'max') { if (acc[i] === null || (row[i] !== null && compareValues(row[i], acc[i], numeric) > 0)) acc[i] = row[i] }
        else if (op === 'bit_and' || op === 'bit_or' || op === 'bit_xor') acc[i] = bits(op, acc[i], row[i])
        else if (op === 'any' && (acc[i] === null || acc[i] === undefined)) acc[i] = row[i]
      })
    }
    rows = [...groups.values()]
  }
  if (spec.orderBy.length > 0) {
    const keys = spec.orderBy.map((o) => {
      const i = resolve(o.column, fields)
      return { i, desc: o.desc, numeric: NUMERIC_TYPES.has(fields[i]?.columnType ?? fields[i]?.type ?? -1) }
    })
    rows.sort((a, b) => {
      for (const k of keys) {
        const c = compareValues(a[k.i], b[k.i], k.numeric)
        if (c !== 0) return k.desc ? -c : c
      }
      return 0
    })
  }
  if (spec.limit !== null) rows = rows.slice(spec.offset, spec.offset + spec.limit)
  return { fields, rows }
}

/** The rows a write changed across shards: the sum of each shard's affected rows. */
export function mergeAffectedRows(perShard: readonly number[]): number {
  return perShard.reduce((s, n) => s + n, 0)
}
