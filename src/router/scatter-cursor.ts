/**
 * The state of a scatter walk between pages, carried in its opaque cursor
 * (pure, no I/O): the page boundary (the last key the main order returned),
 * whether the main order has run out, and, per shard that failed under
 * `onShardFailure: 'partial'`, the position that shard had reached (the key of
 * its last row returned, or "not started"). Later pages read such a lagging
 * shard again from its own position, so the rows a failure skipped are
 * returned once it answers, never lost (issue 17).
 *
 * A walk with no lagging shard is written as the v1 cursor (`{ v: 1, f, k }`)
 * it always was; v1 cursors are still read.
 */
import { badCursor, checkKey, encodeCursor, type SortColumn } from './keyset.js'

/** Where a walk stands between two pages. */
export interface WalkState {
  /** The main order's boundary: the key of the last row it returned; undefined before the first row. */
  readonly after: readonly unknown[] | undefined
  /** The main order has no rows left: only lagging shards remain to read. */
  readonly ended: boolean
  /** Per lagging shard (ascending), its position: the key of its last row returned, or undefined when none was. */
  readonly lagging: ReadonlyMap<number, readonly unknown[] | undefined>
}

interface CursorBodyV2 {
  readonly v: 2
  readonly f: string
  readonly k?: readonly unknown[]
  readonly e?: 1
  /** [shard, position or null] per lagging shard. */
  readonly m: readonly (readonly [number, readonly unknown[] | null])[]
}

/** Encodes a walk state; the plain v1 cursor when nothing lags. */
export function encodeWalk(fingerprint: string, state: WalkState): string {
  if (state.lagging.size === 0 && !state.ended && state.after !== undefined) return encodeCursor(fingerprint, state.after)
  const body: CursorBodyV2 = {
    v: 2,
    f: fingerprint,
    ...(state.after !== undefined ? { k: state.after } : {}),
    ...(state.ended ? { e: 1 as const } : {}),
    m: [...state.lagging].sort((a, b) => a[0] - b[0]).map(([s, pos]) => [s, pos ?? null] as const),
  }
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url')
}

/**
 * Decodes a cursor of this query: its fingerprint must match, every key must fit the order's columns, and
 * every lagging shard must be one this query reads.
 * @throws ShardkitError `USAGE` naming `after`
 */
export function decodeWalk(cursor: string, fingerprint: string, order: readonly SortColumn[], shards: readonly number[]): WalkState {
  let body: { v?: unknown; f?: unknown; k?: unknown; e?: unknown; m?: unknown }
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as typeof body
  } catch {
    throw badCursor('not readable')
  }
  if (body === null || typeof body !== 'object' || (body.v !== 1 && body.v !== 2)) throw badCursor('not readable')
  if (body.f !== fingerprint) throw badCursor('it was made for another dimension, filter or order')
  if (body.v === 1) return { after: checkKey(order, body.k, 'key'), ended: false, lagging: new Map() }
  const after = body.k === undefined ? undefined : checkKey(order, body.k, 'key')
  if (body.e !== undefined && body.e !== 1) throw badCursor('not readable')
  if (!Array.isArray(body.m)) throw badCursor('not readable')
  const known = new Set(shards)
  const lagging = new Map<number, readonly unknown[] | undefined>()
  for (const entry of body.m as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) throw badCursor('not readable')
    const [shard, pos] = entry as [unknown, unknown]
    if (typeof shard !== 'number' || !known.has(shard) || lagging.has(shard)) throw badCursor('it names a shard this query does not read')
    lagging.set(shard, pos === null ? undefined : checkKey(order, pos, 'shard position'))
  }
  const ended = body.e === 1
  if (!ended && after === undefined && lagging.size === 0) throw badCursor('not readable')
  return { after, ended, lagging }
}
