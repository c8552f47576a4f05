/**
 * Why a statement is not served by one shard, and what a developer should
 * write instead. One sentence per reason, so lint output and the planner
 * say the same thing.
 */
import type { KeyDimension, SqlClass } from './types.js'

/** Stable reason codes (they appear in `--json`). */
export type Reason =
  | 'cross-shard-join'
  | 'cross-shard-subquery'
  | 'avg-across-shards'
  | 'count-distinct-across-shards'
  | 'having-across-shards'
  | 'shard-key-update'
  | 'order-id-update'
  | 'write-without-shard-key'
  | 'write-by-merchant-only'
  | 'insert-without-order-id'
  | 'last-insert-id'
  | 'insert-select'
  | 'upsert-on-unique-key'
  | 'lock-across-shards'
  | 'transaction-across-shard-keys'
  | 'transaction-across-tables'
  | 'aggregate-across-shards'
  | 'aggregate-expression-across-shards'
  | 'merge-key-not-selected'
  | 'write-limit-across-shards'
  | 'union-across-shards'
  | 'deep-offset'
  | 'multi-row-insert'
  | 'transaction'
  | 'several-statements'
  | 'parse-error'

/** What to write instead, per reason. */
export const REASON_ADVICE: Readonly<Record<Reason, string>> = {
  'cross-shard-join': 'join in the application: read the orders by user_id (or order id), then fetch the other rows by their keys',
  'cross-shard-subquery': 'run the subquery first and pass its keys as an IN list on user_id or the order id',
  'avg-across-shards': 'compute AVG as SUM/COUNT merged across shards',
  'count-distinct-across-shards': 'count distinct values per shard into a set in the application, or keep a counter table',
  'having-across-shards': 'GROUP BY the user column (groups stay on one shard) or apply HAVING after merging the groups',
  'shard-key-update': 'never move an order between users/merchants in place: insert a new order with a new id and cancel the old one',
  'order-id-update': 'order ids are immutable: they carry the user shard',
  'write-without-shard-key': 'select the order ids first, then update/delete by `order_id = ?` and `user_id = ?` (one shard each)',
  'write-by-merchant-only': 'read the order ids from the merchant dimension, then write by order id: writes go to the user dimension first',
  'insert-without-order-id': 'take the order id from the id generator (`shardctl id new` / IdGenerator) and insert it explicitly',
  'last-insert-id': 'drop LAST_INSERT_ID(): the application already has the generated order id',
  'insert-select': 'read the rows, then insert them through the router in batches per user',
  'upsert-on-unique-key': 'a unique key without the user column is not enforced across shards: check it with a lookup table, or add user_id to the key',
  'lock-across-shards': 'lock rows of one user only (`user_id = ?` ... FOR UPDATE), or lock by order id',
  'transaction-across-shard-keys': 'keep a transaction within one user; use the outbox/events for the rest',
  'transaction-across-tables': 'a transaction that writes the orders and another table is not atomic once orders live on the shards: write the other table from an event (outbox) or keep it per user beside the orders',
  'aggregate-across-shards': 'STDDEV, VARIANCE, GROUP_CONCAT and the JSON aggregates cannot be merged from per-shard results: select COUNT, SUM and SUM of squares (or the rows) per shard and finish in the application',
  'aggregate-expression-across-shards': 'select each aggregate as its own column (e.g. SUM(x), COUNT(*)), merge them across shards, then compute the expression; every other column must be in GROUP BY',
  'merge-key-not-selected': 'add each GROUP BY and ORDER BY term to the select list, so the per-shard results can be re-grouped and merged in order',
  'write-limit-across-shards': 'each shard would apply its own LIMIT: select the order ids first (ORDER BY ... LIMIT n), then update/delete by `order_id = ?` and `user_id = ?`',
  'union-across-shards': 'run each SELECT of the UNION by its own key and combine in the application (UNION ALL: concatenate; UNION: also remove duplicates)',
  'deep-offset': 'replace OFFSET with a keyset cursor (`WHERE (created_at, order_id) < (?, ?) ORDER BY ... LIMIT n`)',
  'multi-row-insert': 'group the rows by user shard; each batch is one shard',
  transaction: 'transactions stay correct only while every statement in them touches one user',
  'several-statements': 'lint one statement at a time',
  'parse-error': 'the parser rejected it: check the syntax, or review this statement by hand',
}

/** One suggestion for a class and its reasons. */
export function advise(cls: SqlClass, reasons: readonly Reason[], dimension: KeyDimension | null): string {
  if (reasons.length > 0) return reasons.map((r) => REASON_ADVICE[r]).join('; ')
  switch (cls) {
    case 'user': return 'served by one user shard'
    case 'order': return 'served by one user shard: the order id carries it (legacy ids through the lookup); add `user_id = ?` to skip the lookup'
    case 'merchant': return 'read from the merchant dimension (one shard)'
    case 'multi': return `fans out to several ${dimension ?? 'user'} shards: group the keys by shard`
    case 'scatter': return 'add `user_id = ?`; the order id alone also routes; or read by `merchant_id = ?` from the merchant dimension'
    case 'other': return 'not on the sharded table: passes through to the legacy database'
    default: return ''
  }
}
