/**
 * The merge a read across several shards needs, as data a program can run
 * (merge-rows.ts runs it) and as words for people, or the reasons no merge of
 * per-shard results can be exact: AVG, DISTINCT aggregates, STDDEV and
 * GROUP_CONCAT, expressions over aggregates, HAVING over groups that span
 * shards, GROUP BY / ORDER BY terms the select list does not carry. Pure.
 */
import { LOGICAL_SHARDS } from '../router/shard-function.js'
import { anyNode, fnName, isObj, sameExpr, type Node } from './ast.js'
import type { Reason } from './reasons.js'

/** An output column of the per-shard result: by position, or by name when the select list has `*`. */
export type ColumnRef = { readonly index: number } | { readonly name: string }

/** How the per-shard values of one output column combine into the merged group. */
export type Combine = 'key' | 'sum' | 'min' | 'max' | 'bit_and' | 'bit_or' | 'bit_xor' | 'any'

/**
 * A merge of per-shard results that gives the single-database result.
 * `rows`: concatenate; `groups`: re-group by `groupBy` and combine each
 * column; `affected`: add up affected rows. Then sort by `orderBy`, skip
 * `offset` and keep `limit` rows.
 */
export interface MergeSpec {
  readonly kind: 'rows' | 'groups' | 'affected'
  readonly groupBy: readonly ColumnRef[]
  /** Per output column (groups only). */
  readonly combine: readonly Combine[] | null
  readonly orderBy: readonly { readonly column: ColumnRef; readonly desc: boolean }[]
  readonly limit: number | null
  readonly offset: number
  /** What each shard's SQL does with LIMIT: `push-down` reads OFFSET+LIMIT rows, `drop` reads all (groups), `none` has none. */
  readonly perShardLimit: 'push-down' | 'drop' | 'none'
}

/** Aggregates whose per-shard results combine exactly. */
const MERGEABLE: Readonly<Record<string, Combine>> = { COUNT: 'sum', SUM: 'sum', MIN: 'min', MAX: 'max', BIT_AND: 'bit_and', BIT_OR: 'bit_or', BIT_XOR: 'bit_xor' }
/** Aggregates no merge of per-shard results gets right. */
const UNMERGEABLE = new Set(['STDDEV', 'STD', 'STDDEV_POP', 'STDDEV_SAMP', 'VARIANCE', 'VAR_POP', 'VAR_SAMP', 'GROUP_CONCAT', 'JSON_ARRAYAGG', 'JSON_OBJECTAGG', 'AVG'])

/** Whether a node is an aggregate call (node-sql-parser makes STDDEV and BIT_OR plain functions). */
export function isAggregate(n: Node): boolean {
  const name = fnName(n)
  return name !== '' && (n.type === 'aggr_func' || name in MERGEABLE || UNMERGEABLE.has(name))
}

/** LIMIT count and OFFSET of a statement (null when absent or not a number). */
export function limitOf(ast: Node): { count: number | null; offset: number | null } {
  const vals: Node[] = ast.limit?.value ?? []
  const num = (n: Node | undefined): number | null => (n && n.type === 'number' ? Number(n.value) : null)
  if (vals.length === 2) return ast.limit.seperator === 'offset' ? { count: num(vals[0]), offset: num(vals[1]) } : { count: num(vals[1]), offset: num(vals[0]) }
  return { count: num(vals[0]), offset: null }
}

interface Output { readonly items: readonly Node[]; readonly starAt: number }

function outputOf(ast: Node): Output {
  const items: Node[] = Array.isArray(ast.columns) ? ast.columns : []
  const starAt = items.findIndex((c) => isObj(c.expr) && c.expr.type === 'column_ref' && c.expr.column === '*')
  return { items, starAt }
}

/** Which output column an ORDER BY / GROUP BY term names, or null when the select list does not carry it. */
function outRef(expr: Node, out: Output): ColumnRef | null {
  const byIndex = (i: number): ColumnRef | null => (out.starAt < 0 || i < out.starAt ? { index: i } : null)
  if (expr.type === 'number' && Number.isInteger(Number(expr.value))) {
    const i = Number(expr.value) - 1
    return out.starAt < 0 && i >= 0 && i < out.items.length ? { index: i } : null
  }
  if (expr.type === 'column_ref' && typeof expr.column === 'string') {
    const c = expr.column.toLowerCase()
    if (expr.table == null) {
      const alias = out.items.findIndex((it) => typeof it.as === 'string' && it.as.toLowerCase() === c)
      if (alias >= 0) return byIndex(alias) ?? { name: out.items[alias]!.as }
    }
    const same = out.items.findIndex((it) => isObj(it.expr) && it.expr.type === 'column_ref' && String(it.expr.column).toLowerCase() === c && it.as == null)
    if (same >= 0) return byIndex(same) ?? { name: c }
    return out.starAt >= 0 ? { name: c } : null
  }
  const i = out.items.findIndex((it) => sameExpr(it.expr, expr))
  return i >= 0 ? byIndex(i) : null
}

/** The merge plan of a read across shards, or the reasons it cannot be exact. */
export function planMerge(ast: Node, groupedByShardKey: boolean): { spec: MergeSpec | null; reasons: Reason[] } {
  const reasons: Reason[] = []
  const out = outputOf(ast)
  const cols = [ast.columns, ast.having, ast.orderby]
  if (anyNode(cols, (n) => fnName(n) === 'AVG' && isAggregate(n))) reasons.push('avg-across-shards')
  if (anyNode(cols, (n) => n.type === 'aggr_func' && isObj(n.args) && !!n.args.distinct) || ast.distinct) reasons.push('count-distinct-across-shards')
  const groupCols: Node[] = ast.groupby?.columns ?? []
  const aggregated = groupCols.length > 0 || anyNode([ast.columns, ast.having], isAggregate)
  const { count, offset } = limitOf(ast)
  const orderBy: { column: ColumnRef; desc: boolean }[] = []
  for (const o of (ast.orderby ?? []) as Node[]) {
    const ref = isObj(o.expr) ? outRef(o.expr, out) : null
    if (!ref) { reasons.push('merge-key-not-selected'); break }
    orderBy.push({ column: ref, desc: String(o.type ?? '').toUpperCase() === 'DESC' })
  }
  if (!aggregated || groupedByShardKey) {
    // every group (if any) lies whole on one shard: its aggregates are exact there
    if (groupedByShardKey) reasons.splice(0, reasons.length, ...reasons.filter((r) => r === 'merge-key-not-selected' || (r === 'count-distinct-across-shards' && ast.distinct)))
    const spec: MergeSpec = { kind: 'rows', groupBy: [], combine: null, orderBy, limit: count, offset: offset ?? 0, perShardLimit: count === null ? 'none' : 'push-down' }
    return { spec: reasons.length > 0 ? null : spec, reasons }
  }
  if (ast.having) reasons.push('having-across-shards')
  if (anyNode(cols, (n) => isAggregate(n) && UNMERGEABLE.has(fnName(n)) && fnName(n) !== 'AVG') || anyNode(cols, (n) => isAggregate(n) && n.over != null)) reasons.push('aggregate-across-shards')
  const groupBy: ColumnRef[] = []
  const keyIndexes = new Set<number>()
  for (const g of groupCols) {
    const ref = outRef(g, out)
    if (!ref || !('index' in ref)) { reasons.push('merge-key-not-selected'); break }
    groupBy.push(ref)
    keyIndexes.add(ref.index)
  }
  const combine: Combine[] = []
  if (out.starAt >= 0) reasons.push('aggregate-expression-across-shards')
  out.items.forEach((it, i) => {
    const e: Node = isObj(it.expr) ? it.expr : {}
    if (keyIndexes.has(i)) combine.push('key')
    else if (isAggregate(e) && fnName(e) in MERGEABLE) combine.push(MERGEABLE[fnName(e)]!)
    else if (isAggregate(e)) combine.push('any') // already a reason above
    else if (['number', 'single_quote_string', 'double_quote_string', 'null', 'bool'].includes(String(e.type))) combine.push('any')
    else if (groupCols.some((g) => sameExpr(g, e))) combine.push('key')
    else reasons.push('aggregate-expression-across-shards')
  })
  const unique = [...new Set(reasons)]
  if (unique.length > 0) return { spec: null, reasons: unique }
  return { spec: { kind: 'groups', groupBy, combine, orderBy, limit: count, offset: offset ?? 0, perShardLimit: count === null ? 'none' : 'drop' }, reasons: [] }
}

/** The spec of a write across shards: add up the affected rows. */
export const AFFECTED_MERGE: MergeSpec = { kind: 'affected', groupBy: [], combine: null, orderBy: [], limit: null, offset: 0, perShardLimit: 'none' }

/** The merge in words, as lint and explain print it. */
export function describeMerge(spec: MergeSpec): string {
  if (spec.kind === 'affected') return 'add up the rows each shard changed'
  const steps: string[] = []
  if (spec.kind === 'groups') {
    if (spec.groupBy.length > 0) steps.push('re-group by the GROUP BY columns')
    const ops = new Set(spec.combine ?? [])
    if (ops.has('sum')) steps.push('sum COUNT/SUM across shards')
    if (ops.has('min')) steps.push('take the MIN across shards')
    if (ops.has('max')) steps.push('take the MAX across shards')
    if (ops.has('bit_and') || ops.has('bit_or') || ops.has('bit_xor')) steps.push('combine BIT_AND/BIT_OR/BIT_XOR across shards')
  }
  if (spec.orderBy.length > 0) steps.push('ordered merge on ORDER BY')
  if (spec.limit !== null) {
    const k = spec.offset
    if (spec.perShardLimit === 'drop') steps.push(`each shard returns all its groups; keep ${spec.limit}${k > 0 ? ` after skipping ${k}` : ''}`)
    else steps.push(k > 0 ? `each shard reads OFFSET+LIMIT = ${k + spec.limit} rows (${(k + spec.limit) * LOGICAL_SHARDS} rows in all), keep ${spec.limit} after skipping ${k}` : `keep the first ${spec.limit}`)
  }
  if (steps.length === 0) steps.push('concatenate rows')
  return steps.join('; ')
}
