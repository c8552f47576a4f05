/**
 * The verdict the classifier gives one statement, and how it is built
 * (below classify.ts and classify-insert.ts, which both make verdicts).
 */
import type { KeyValue } from './ast.js'
import { describeMerge, type MergeSpec } from './merge-spec.js'
import { advise, type Reason } from './reasons.js'
import type { KeyDimension, SqlClass, SqlLayout } from './types.js'

/** The verdict for one statement. */
export interface Classification {
  readonly class: SqlClass
  readonly dimension: KeyDimension | null
  /** Key values that route the statement (for user/merchant/order/multi). */
  readonly keys: readonly KeyValue[]
  /** Shards touched at most (1, n for multi, 120 for scatter; null when unknown). */
  readonly maxShards: number | null
  readonly reasons: readonly Reason[]
  readonly suggestion: string
  /** The merge step a scatter or multi statement needs, in words, if any. */
  readonly merge: string | null
  /** The same merge as data (merge-rows.ts runs it); null for one shard or no exact merge. */
  readonly mergePlan: MergeSpec | null
  readonly kind: 'read' | 'write' | 'other'
}

/** Reasons that advise without making the statement unsupported. */
export const ADVISORY_REASONS: ReadonlySet<Reason> = new Set<Reason>(['deep-offset', 'multi-row-insert', 'transaction'])

/** What the classifier knows about the statement's references to the sharded table. */
export interface Ctx {
  readonly layout: SqlLayout
  readonly names: Set<string>
}

/** Distinct key values; every placeholder counts as its own value (it may be bound to anything). */
export const distinctCount = (keys: readonly KeyValue[]): number => (keys.some((k) => k === null) ? keys.length : new Set(keys).size)

/** Builds a verdict with its suggestion. */
export function verdict(cls: SqlClass, kind: Classification['kind'], reasons: Reason[], extra: Partial<Classification> = {}): Classification {
  const dimension = extra.dimension ?? null
  const mergePlan = extra.mergePlan ?? null
  return { class: cls, dimension, keys: extra.keys ?? [], maxShards: extra.maxShards ?? null, reasons, merge: extra.merge ?? (mergePlan ? describeMerge(mergePlan) : null), mergePlan, kind, suggestion: advise(cls, reasons, dimension) }
}

