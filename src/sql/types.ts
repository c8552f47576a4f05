/**
 * The types every part of SQL lint shares (classifier, reasons, merge,
 * linter, planner), kept below all of them so none imports another back.
 */

/** The classes of the lint: one shard of a dimension, several, all, none possible, or not on the sharded table. */
export type SqlClass = 'user' | 'merchant' | 'order' | 'multi' | 'scatter' | 'unsupported' | 'other' | 'unparsed'

/** Every class, in report order. */
export const SQL_CLASSES: readonly SqlClass[] = ['user', 'merchant', 'order', 'multi', 'scatter', 'unsupported', 'other', 'unparsed']

/** The dimension whose key routes a statement; `order` ids carry their user shard. */
export type KeyDimension = 'user' | 'merchant' | 'order'

/**
 * How bad a class is for a digest's verdict (the worst statement wins):
 * a statement on one shard < several < every shard < not parsed < unsupported.
 * `other` (not on the sharded table) is the mildest: it passes through to legacy.
 */
export const CLASS_SEVERITY: Readonly<Record<SqlClass, number>> = { other: 0, user: 1, merchant: 1, order: 1, multi: 2, scatter: 3, unparsed: 4, unsupported: 5 }

/** What the classifier needs to know about the sharded table (from ShardkitConfig.legacy). */
export interface SqlLayout {
  readonly database: string
  readonly table: string
  readonly userColumn: string
  readonly merchantColumn: string
  readonly primaryKey: string
  /** Unique keys other than the primary key, as column lists (from schema lint); default none. */
  readonly uniqueKeys?: readonly (readonly string[])[]
}
