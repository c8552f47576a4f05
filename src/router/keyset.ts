/**
 * Keyset pagination over a total order, pure: how two rows compare in Node
 * exactly as the server's ORDER BY compares them, the `WHERE` predicate that
 * resumes after a row, and the opaque cursor that carries the last row's key.
 *
 * Only column kinds whose server order can be reproduced exactly in Node may
 * be sorted on: integers (BIGINTs arrive as decimal strings), DECIMAL
 * (strings, compared digit by digit), DOUBLE, and temporal columns (the
 * pools return dates as the server's fixed-width strings). Text columns sort
 * by collation (case- and accent-insensitive), which Node cannot mirror, so a
 * cross-shard merge on them would interleave rows wrongly.
 *
 * FLOAT (single precision; also REAL under `REAL_AS_FLOAT`, which
 * information_schema reports as `float`) is its own kind, `float32`, and may
 * not be sorted on: the server prints a FLOAT to about 6 digits, so a cursor
 * carries `0.1` while the stored value is 0.10000000149011612, and
 * `score > 0.1` matches the cursor's own row again: the walk loops (issue 17).
 * DOUBLE prints every digit it needs to round-trip, so its cursors are exact.
 */
import { ShardkitError } from '../errors.js'
import { quoteIdent } from '../runtime/mysql.js'

/** How a column's values compare. `other` and `float32` columns can be selected and filtered, not sorted on. */
export type SortKind = 'int' | 'decimal' | 'float' | 'float32' | 'temporal' | 'other'

/** One column of a total order, validated against the table. */
export interface SortColumn {
  readonly column: string
  readonly direction: 'asc' | 'desc'
  readonly kind: Exclude<SortKind, 'other' | 'float32'>
}

const INT_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint'])
const TEMPORAL_TYPES = new Set(['date', 'datetime', 'timestamp', 'year'])

/** The sort kind of an information_schema `DATA_TYPE`. */
export function sortKindOf(dataType: string): SortKind {
  const t = dataType.toLowerCase()
  if (INT_TYPES.has(t)) return 'int'
  if (t === 'decimal' || t === 'numeric') return 'decimal'
  // information_schema says `float` for FLOAT, FLOAT(p<=24) and REAL under REAL_AS_FLOAT; `double` otherwise.
  if (t === 'float') return 'float32'
  if (t === 'double' || t === 'real') return 'float'
  if (TEMPORAL_TYPES.has(t)) return 'temporal'
  return 'other'
}

const INT_RE = /^-?[0-9]+$/
const DECIMAL_RE = /^-?[0-9]*(\.[0-9]*)?$/

function compareIntegers(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
  const x = BigInt(a as string | number)
  const y = BigInt(b as string | number)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Sign, integer digits without leading zeros, fraction digits without trailing zeros. */
function splitDecimal(v: string): [number, string, string] {
  const neg = v.startsWith('-')
  const body = neg ? v.slice(1) : v
  const dot = body.indexOf('.')
  const int = (dot < 0 ? body : body.slice(0, dot)).replace(/^0+/, '')
  const frac = dot < 0 ? '' : body.slice(dot + 1).replace(/0+$/, '')
  return [int === '' && frac === '' ? 0 : neg ? -1 : 1, int, frac]
}

/** Exact comparison of two decimal strings such as `-12.50` and `3`. */
export function compareDecimals(a: string, b: string): number {
  const [sa, ia, fa] = splitDecimal(a)
  const [sb, ib, fb] = splitDecimal(b)
  if (sa !== sb) return sa < sb ? -1 : 1
  let mag: number
  if (ia.length !== ib.length) mag = ia.length < ib.length ? -1 : 1
  else if (ia !== ib) mag = ia < ib ? -1 : 1
  else {
    const n = Math.max(fa.length, fb.length)
    const pa = fa.padEnd(n, '0')
    const pb = fb.padEnd(n, '0')
    mag = pa < pb ? -1 : pa > pb ? 1 : 0
  }
  return mag === 0 ? 0 : sa < 0 ? -mag : mag
}

/** Compares two non-null values of one column the way the server orders them ascending. */
export function compareValues(kind: SortColumn['kind'], a: unknown, b: unknown): number {
  switch (kind) {
    case 'int':
      return compareIntegers(a, b)
    case 'decimal':
      return compareDecimals(String(a), String(b))
    case 'float': {
      const x = Number(a)
      const y = Number(b)
      return x < y ? -1 : x > y ? 1 : 0
    }
    case 'temporal':
      if (typeof a === 'number' && typeof b === 'number') return a - b
      return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0
  }
}

/** Compares two keys (the order columns' values, in order) under the order's directions. */
export function compareKeys(order: readonly SortColumn[], a: readonly unknown[], b: readonly unknown[]): number {
  for (let i = 0; i < order.length; i++) {
    const c = compareValues(order[i]!.kind, a[i], b[i])
    if (c !== 0) return order[i]!.direction === 'asc' ? c : -c
  }
  return 0
}

/** `ORDER BY` clause text for the order (identifiers quoted). */
export function orderByClause(order: readonly SortColumn[]): string {
  return order.map((o) => `${quoteIdent(o.column)} ${o.direction === 'asc' ? 'ASC' : 'DESC'}`).join(', ')
}

/**
 * The predicate selecting rows strictly after `after` in the order:
 * `(c1 > ?) OR (c1 = ? AND c2 > ?) OR ...` (`<` for descending columns), so
 * mixed directions work and each branch can use an index range.
 */
export function keysetPredicate(order: readonly SortColumn[], after: readonly unknown[]): { sql: string; params: unknown[] } {
  const branches: string[] = []
  const params: unknown[] = []
  for (let i = 0; i < order.length; i++) {
    const parts: string[] = []
    for (let j = 0; j < i; j++) {
      parts.push(`${quoteIdent(order[j]!.column)} = ?`)
      params.push(after[j])
    }
    parts.push(`${quoteIdent(order[i]!.column)} ${order[i]!.direction === 'asc' ? '>' : '<'} ?`)
    params.push(after[i])
    branches.push(`(${parts.join(' AND ')})`)
  }
  return { sql: `(${branches.join(' OR ')})`, params }
}

interface CursorBody {
  readonly v: 1
  /** Fingerprint of the query the cursor belongs to. */
  readonly f: string
  /** The last row's key. */
  readonly k: readonly unknown[]
}

/** An opaque cursor: the query's fingerprint and the last row's key, base64url JSON. */
export function encodeCursor(fingerprint: string, key: readonly unknown[]): string {
  const body: CursorBody = { v: 1, f: fingerprint, k: key }
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url')
}

/** `USAGE` naming `after`, saying why the cursor was not taken. */
export function badCursor(why: string): ShardkitError {
  return new ShardkitError('USAGE', `option "after" is not a cursor of this query (${why}); pass the nextCursor returned by the same query, or omit "after" to start from the beginning`, { argument: 'after' })
}

/**
 * Decodes a cursor made by {@link encodeCursor} for the same query and checks
 * each value's form against its column's kind.
 * @throws ShardkitError `USAGE` naming `after` when the cursor is malformed or belongs to another query
 */
export function decodeCursor(cursor: string, fingerprint: string, order: readonly SortColumn[]): unknown[] {
  let body: CursorBody
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorBody
  } catch {
    throw badCursor('not readable')
  }
  if (body === null || typeof body !== 'object' || body.v !== 1 || !Array.isArray(body.k)) throw badCursor('not readable')
  if (body.f !== fingerprint) throw badCursor('it was made for another dimension, filter or order')
  return checkKey(order, body.k, 'key')
}

/**
 * Checks a key read from a cursor: one value per order column, each of the form its column's kind takes.
 * @throws ShardkitError `USAGE` naming `after`
 */
export function checkKey(order: readonly SortColumn[], k: unknown, what: string): unknown[] {
  if (!Array.isArray(k)) throw badCursor('not readable')
  if (k.length !== order.length) throw badCursor(`wrong number of ${what} values`)
  k.forEach((v: unknown, i) => {
    const kind = order[i]!.kind
    const ok =
      kind === 'int'
        ? (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && INT_RE.test(v))
        : kind === 'decimal'
          ? (typeof v === 'string' && DECIMAL_RE.test(v) && v !== '' && v !== '-') || (typeof v === 'number' && Number.isFinite(v))
          : kind === 'float'
            ? typeof v === 'number' && Number.isFinite(v)
            : typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v))
    if (!ok) throw badCursor(`${what} value ${i + 1} does not fit column ${order[i]!.column}`)
  })
  return k as unknown[]
}
