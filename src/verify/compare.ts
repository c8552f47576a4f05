/**
 * What a difference is, and the pure comparison of what each side holds for
 * one key: missing, extra, different, misplaced (in a table its key does not
 * route to), a new id whose shard field is not its user's shard, or a
 * legacy row no key routes (`unroutable`: NULL or negative; it belongs in no
 * shard, so any copy of it is `extra`).
 */
import { compareIds, shardFieldUnchecked } from '../idgen/layout.js'
import { routeKey, type Dimension } from '../router/shard-function.js'
import type { Entry } from './streams.js'

export type Side = 'legacy' | 'user' | 'merchant'
export type Pair = 'legacy-user' | 'legacy-merchant' | 'user-merchant'
export type DiffKind = 'missing' | 'extra' | 'different' | 'misplaced' | 'bad-shard-field' | 'unroutable'

/** The shard a key value routes to, or undefined when it routes nowhere. */
export function shardOfValue(v: unknown): number | undefined {
  const r = routeKey(v)
  return 'shard' in r ? r.shard : undefined
}

/** One difference: identifiers only, never row data. */
export interface Difference {
  readonly pair: Pair
  readonly kind: DiffKind
  readonly key: string
  /** Where the row was found or expected (dimension shard), when it applies. */
  readonly shard?: number
}

export interface DiffContext {
  readonly ceiling: string
  readonly pairs: readonly Pair[]
}

/** Compares what each side holds for one key (pure). */
export function compareKey(key: string, l: Entry | undefined, u: Entry[], m: Entry[], ctx: DiffContext): Difference[] {
  const out: Difference[] = []
  const dimCheck = (pair: Pair, side: Dimension, copies: Entry[]) => {
    // A legacy row no key routes has no copy anywhere: every copy is extra (the verifier lists the row itself).
    if (!l || shardOfValue(l.user) === undefined || shardOfValue(l.merchant) === undefined) {
      for (const c of copies) out.push({ pair, kind: 'extra', key, shard: c.shard })
      return
    }
    const want = shardOfValue(side === 'user' ? l.user : l.merchant)!
    if (copies.length === 0) out.push({ pair, kind: 'missing', key, shard: want })
    for (const c of copies) {
      if (c.shard !== want) out.push({ pair, kind: 'misplaced', key, shard: c.shard })
      else if (c.hash !== l.hash) out.push({ pair, kind: 'different', key, shard: c.shard })
    }
  }
  if (ctx.pairs.includes('legacy-user')) dimCheck('legacy-user', 'user', u)
  if (ctx.pairs.includes('legacy-merchant')) dimCheck('legacy-merchant', 'merchant', m)
  if (!ctx.pairs.includes('legacy-user') && !ctx.pairs.includes('legacy-merchant')) {
    // Legacy is retired: each copy must sit where its own key routes.
    for (const c of u) if (c.shard !== shardOfValue(c.user)) out.push({ pair: 'user-merchant', kind: 'misplaced', key, shard: c.shard })
    for (const c of m) if (c.shard !== shardOfValue(c.merchant)) out.push({ pair: 'user-merchant', kind: 'misplaced', key, shard: c.shard })
  }
  if (ctx.pairs.includes('user-merchant')) {
    const a = u[0]
    const b = m[0]
    if (a && !b) out.push({ pair: 'user-merchant', kind: 'missing', key, ...(shardOfValue(a.merchant) === undefined ? {} : { shard: shardOfValue(a.merchant)! }) })
    else if (!a && b) out.push({ pair: 'user-merchant', kind: 'extra', key, shard: b.shard })
    else if (a && b && a.hash !== b.hash) out.push({ pair: 'user-merchant', kind: 'different', key, shard: b.shard })
  }
  const owner = l ?? u[0]
  if (owner && compareIds(key, ctx.ceiling) > 0 && shardOfValue(owner.user) !== undefined && shardFieldUnchecked(key) !== shardOfValue(owner.user)) {
    out.push({ pair: ctx.pairs.includes('legacy-user') ? 'legacy-user' : 'user-merchant', kind: 'bad-shard-field', key })
  }
  return out
}

/** The pairs a verify of `dimension` compares. */
export function pairsFor(d: Dimension | 'all'): Pair[] {
  return d === 'user' ? ['legacy-user'] : d === 'merchant' ? ['legacy-merchant'] : ['legacy-user', 'legacy-merchant', 'user-merchant']
}
