/**
 * List cursors (pure). Lists run newest first on (created_at, order_id), the
 * order the (user_id, created_at) and (merchant_id, created_at) indexes give
 * (InnoDB appends the primary key to every secondary index), so a page is a
 * keyset seek, never an OFFSET. The cursor is opaque to callers: base64url of
 * `created_at|order_id` from the last row of the previous page.
 */
import { ShardkitError } from '../errors.js'

/** Where the next page starts (exclusive). */
export interface ListPosition {
  readonly createdAt: string
  readonly orderId: string
}

const DATETIME_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/
const ID_RE = /^(0|[1-9][0-9]{0,18})$/

/** Default and largest page size. */
export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 1_000

/** Encodes the position after `row`. */
export function encodeCursor(p: ListPosition): string {
  return Buffer.from(`${p.createdAt}|${p.orderId}`, 'utf8').toString('base64url')
}

/**
 * Decodes a cursor from a previous page.
 * @throws ShardkitError `USAGE` when it is not one
 */
export function decodeCursor(cursor: string): ListPosition {
  const bad = () => new ShardkitError('USAGE', 'cursor is not one this store returned; pass nextCursor from the previous page unchanged, or omit it for the first page', { argument: 'cursor' })
  if (typeof cursor !== 'string' || cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad()
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const [createdAt, orderId, extra] = text.split('|')
  if (extra !== undefined || createdAt === undefined || orderId === undefined || !DATETIME_RE.test(createdAt) || !ID_RE.test(orderId)) throw bad()
  return { createdAt, orderId }
}

/**
 * Checks a page size.
 * @throws ShardkitError `USAGE` naming `limit`
 */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new ShardkitError('USAGE', `limit must be a whole number from 1 to ${MAX_LIMIT} (got ${String(limit)})`, { argument: 'limit' })
  }
  return limit
}
