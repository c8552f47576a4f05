/**
 * Classifies one parsed statement against the sharded layout (pure, on
 * node-sql-parser's AST): which dimension and how many shards serve it, or
 * why the sharded layout cannot serve it, and what to write instead.
 */
import { LOGICAL_SHARDS } from '../router/shard-function.js'
import { advise, type Reason } from './reasons.js'

/** The classes of the issue: one shard of a dimension, several, all, none possible, or not on the sharded table. */
export type SqlClass = 'user' | 'merchant' | 'order' | 'multi' | 'scatter' | 'unsupported' | 'other' | 'unparsed'
export const SQL_CLASSES: readonly SqlClass[] = ['user', 'merchant', 'order', 'multi', 'scatter', 'unsupported', 'other', 'unparsed']
export type KeyDimension = 'user' | 'merchant' | 'order'

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

/** A key value found in the statement: a literal's text, or null for a placeholder. */
export type KeyValue = string | null

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
  /** The merge step a scatter or multi read needs, if any. */
  readonly merge: string | null
  readonly kind: 'read' | 'write' | 'other'
}

type Node = Record<string, any>

const isObj = (v: unknown): v is Node => typeof v === 'object' && v !== null

/** Every table reference in the tree, with whether it sits inside a subquery. */
function tableRefs(node: unknown, depth: number, out: { db: string | null; table: string; as: string | null; depth: number }[]): void {
  if (Array.isArray(node)) { for (const x of node) tableRefs(x, depth, out); return }
  if (!isObj(node)) return
  for (const key of Object.keys(node)) {
    const v = node[key]
    if ((key === 'from' || key === 'table') && Array.isArray(v)) {
      for (const t of v) {
        // DELETE lists its target in `table` (addition: true) and again in `from`
        if (isObj(t) && t.addition === true) continue
        if (isObj(t) && typeof t.table === 'string') out.push({ db: t.db ?? null, table: t.table, as: t.as ?? null, depth })
        else tableRefs(t, depth, out)
        if (isObj(t) && isObj(t.expr)) tableRefs(t.expr, depth + 1, out)
        if (isObj(t) && t.on) tableRefs(t.on, depth, out)
      }
    } else if (key === 'ast' && isObj(v)) tableRefs(v, depth + 1, out)
    else if (isObj(v) && v.type === 'select' && key !== 'values') tableRefs(v, depth + 1, out)
    else if (isObj(v) || Array.isArray(v)) tableRefs(v, depth, out)
  }
}

function anyNode(node: unknown, pred: (n: Node) => boolean): boolean {
  if (Array.isArray(node)) return node.some((x) => anyNode(x, pred))
  if (!isObj(node)) return false
  if (pred(node)) return true
  for (const k of Object.keys(node)) if (anyNode(node[k], pred)) return true
  return false
}

const fnName = (n: Node): string => {
  if (n.type !== 'function') return ''
  const name = n.name
  if (typeof name === 'string') return name.toUpperCase()
  const parts = name?.name
  return Array.isArray(parts) && parts.length > 0 ? String(parts[parts.length - 1].value).toUpperCase() : ''
}

const literalText = (n: Node): KeyValue | undefined => {
  if (n.type === 'number' || n.type === 'single_quote_string' || n.type === 'double_quote_string' || n.type === 'string') return String(n.value)
  if (n.type === 'param' || n.type === 'origin' && n.value === '?') return null
  return undefined
}

/** Values a WHERE expression pins `column` to: a list, or undefined when unconstrained. */
function keysFor(expr: unknown, isCol: (n: Node) => boolean): KeyValue[] | undefined {
  if (!isObj(expr)) return undefined
  if (expr.type !== 'binary_expr') return undefined
  const op = String(expr.operator).toUpperCase()
  if (op === 'AND') {
    const l = keysFor(expr.left, isCol)
    const r = keysFor(expr.right, isCol)
    if (l && r) return l.length <= r.length ? l : r
    return l ?? r
  }
  if (op === 'OR') {
    const l = keysFor(expr.left, isCol)
    const r = keysFor(expr.right, isCol)
    return l && r ? [...l, ...r] : undefined
  }
  if (op === '=') {
    const [col, val] = isObj(expr.left) && isCol(expr.left) ? [expr.left, expr.right] : isObj(expr.right) && isCol(expr.right) ? [expr.right, expr.left] : [null, null]
    if (!col || !isObj(val)) return undefined
    const v = literalText(val)
    return v === undefined ? undefined : [v]
  }
  if (op === 'IN' && isObj(expr.left) && isCol(expr.left) && isObj(expr.right) && expr.right.type === 'expr_list' && Array.isArray(expr.right.value)) {
    const vals: KeyValue[] = []
    for (const item of expr.right.value) {
      const v = isObj(item) ? literalText(item) : undefined
      if (v === undefined) return undefined
      vals.push(v)
    }
    return vals
  }
  return undefined
}

const distinctCount = (keys: readonly KeyValue[]): number => (keys.some((k) => k === null) ? keys.length : new Set(keys).size)

interface Ctx {
  readonly layout: SqlLayout
  readonly names: Set<string>
}

function columnMatcher(ctx: Ctx, column: string): (n: Node) => boolean {
  const c = column.toLowerCase()
  return (n) => n.type === 'column_ref' && typeof n.column === 'string' && n.column.toLowerCase() === c && (n.table == null || ctx.names.has(String(n.table).toLowerCase()))
}

function verdict(cls: SqlClass, kind: Classification['kind'], reasons: Reason[], extra: Partial<Classification> = {}): Classification {
  const dimension = extra.dimension ?? null
  return { class: cls, dimension, keys: extra.keys ?? [], maxShards: extra.maxShards ?? null, reasons, merge: extra.merge ?? null, kind, suggestion: advise(cls, reasons, dimension) }
}

/** Routes a WHERE clause: user key first, then order id, then merchant key. */
function route(where: unknown, ctx: Ctx): { dimension: KeyDimension; keys: KeyValue[] } | null {
  const { layout } = ctx
  const candidates: [KeyDimension, string][] = [['user', layout.userColumn], ['order', layout.primaryKey], ['merchant', layout.merchantColumn]]
  let best: { dimension: KeyDimension; keys: KeyValue[] } | null = null
  for (const [dimension, column] of candidates) {
    const keys = keysFor(where, columnMatcher(ctx, column))
    if (keys && (!best || distinctCount(keys) < distinctCount(best.keys))) best = { dimension, keys }
  }
  return best
}

/**
 * Classifies one statement's AST (node-sql-parser, MySQL dialect).
 * @example classifyAst(parser.astify('SELECT * FROM orders WHERE user_id = 5'), layout).class // 'user'
 */
export function classifyAst(ast: unknown, layout: SqlLayout): Classification {
  if (Array.isArray(ast)) {
    if (ast.length !== 1) return verdict('unparsed', 'other', ['several-statements'])
    ast = ast[0]
  }
  if (!isObj(ast)) return verdict('unparsed', 'other', ['several-statements'])
  const type = String(ast.type)
  const refs: { db: string | null; table: string; as: string | null; depth: number }[] = []
  tableRefs(ast, 0, refs)
  const tbl = layout.table.toLowerCase()
  const db = layout.database.toLowerCase()
  const sharded = refs.filter((r) => r.table.toLowerCase() === tbl && (r.db == null || r.db.toLowerCase() === db))
  const usesLastInsertId = anyNode(ast, (n) => fnName(n) === 'LAST_INSERT_ID')
  if (sharded.length === 0) {
    if (usesLastInsertId) return verdict('unsupported', 'read', ['last-insert-id'])
    return verdict('other', type === 'select' ? 'read' : 'other', type === 'transaction' ? ['transaction'] : [])
  }
  const names = new Set<string>([layout.table.toLowerCase()])
  for (const r of sharded) if (r.as) names.add(r.as.toLowerCase())
  const ctx: Ctx = { layout, names }
  if (type === 'insert' || type === 'replace') return classifyInsert(ast, ctx, type, usesLastInsertId, refs.length > sharded.length || sharded.length > 1)
  const kind = type === 'select' ? 'read' : 'write'
  const reasons: Reason[] = []
  if ((sharded.length > 1 || refs.length > sharded.length) && !selfJoinOnUser(ast, refs.length === sharded.length, ctx)) {
    const inSub = refs.some((r) => r.depth > 0)
    reasons.push(inSub ? 'cross-shard-subquery' : 'cross-shard-join')
  }
  if (type === 'update') {
    for (const s of (ast.set ?? []) as Node[]) {
      const col = String(s.column).toLowerCase()
      if (col === layout.userColumn.toLowerCase() || col === layout.merchantColumn.toLowerCase()) reasons.push('shard-key-update')
      else if (col === layout.primaryKey.toLowerCase()) reasons.push('order-id-update')
    }
  }
  const r = route(ast.where, ctx)
  const shards = r ? Math.min(distinctCount(r.keys), LOGICAL_SHARDS) : LOGICAL_SHARDS
  const single = r !== null && shards === 1
  if (kind === 'write') {
    if (!r) reasons.push('write-without-shard-key')
    else if (r.dimension === 'merchant') reasons.push('write-by-merchant-only')
  }
  if (!single) reasons.push(...crossShardReads(ast, ctx))
  if (!single && ast.locking_read) reasons.push('lock-across-shards')
  if (reasons.length > 0) return verdict('unsupported', kind, dedupe(reasons), { dimension: r?.dimension ?? null, keys: r?.keys ?? [], maxShards: shards })
  const merge = single ? null : mergeStep(ast)
  if (!r) return verdict('scatter', kind, offsetReasons(ast), { dimension: 'user', maxShards: LOGICAL_SHARDS, merge })
  if (single) return verdict(r.dimension, kind, [], { dimension: r.dimension, keys: r.keys, maxShards: 1 })
  return verdict('multi', kind, offsetReasons(ast), { dimension: r.dimension, keys: r.keys, maxShards: shards, merge })
}

/** A self-join whose every ON equates the user columns of both sides stays on one user shard. */
function selfJoinOnUser(ast: Node, onlySharded: boolean, ctx: Ctx): boolean {
  const from: Node[] = Array.isArray(ast.from) ? ast.from : []
  if (!onlySharded || from.length < 2 || from.some((t) => typeof t.table !== 'string')) return false
  const isUser = columnMatcher(ctx, ctx.layout.userColumn)
  return from.slice(1).every((t) => anyNode(t.on, (n) => n.type === 'binary_expr' && n.operator === '=' && isObj(n.left) && isObj(n.right) && isUser(n.left) && isUser(n.right) && n.left.table !== n.right.table))
}

const dedupe = (xs: Reason[]): Reason[] => [...new Set(xs)]

/** Aggregates that a plain merge of per-shard results gets wrong. */
function crossShardReads(ast: Node, ctx: Ctx): Reason[] {
  const reasons: Reason[] = []
  const cols = [ast.columns, ast.having, ast.orderby]
  if (anyNode(cols, (n) => n.type === 'aggr_func' && String(n.name).toUpperCase() === 'AVG')) reasons.push('avg-across-shards')
  if (anyNode(cols, (n) => n.type === 'aggr_func' && isObj(n.args) && !!n.args.distinct)) reasons.push('count-distinct-across-shards')
  if (ast.distinct) reasons.push('count-distinct-across-shards')
  const groupCols: Node[] = ast.groupby?.columns ?? []
  const groupsByUser = groupCols.some(columnMatcher(ctx, ctx.layout.userColumn))
  if (ast.having && !groupsByUser) reasons.push('having-across-shards')
  return reasons
}

function limitOf(ast: Node): { count: number | null; offset: number | null } {
  const vals: Node[] = ast.limit?.value ?? []
  const num = (n: Node | undefined): number | null => (n && n.type === 'number' ? Number(n.value) : null)
  if (vals.length === 2) return ast.limit.seperator === 'offset' ? { count: num(vals[0]), offset: num(vals[1]) } : { count: num(vals[1]), offset: num(vals[0]) }
  return { count: num(vals[0]), offset: null }
}

/** Any OFFSET clause counts, whatever its value: the digest hides the value, and page 1's `OFFSET 0` shares a digest with page 1,000's. */
function offsetReasons(ast: Node): Reason[] {
  return (ast.limit?.value ?? []).length === 2 ? ['deep-offset'] : []
}

/** The merge a scatter or multi read needs, in words. */
function mergeStep(ast: Node): string | null {
  if (ast.type !== 'select') return null
  const steps: string[] = []
  const aggs = new Set<string>()
  anyNode(ast.columns, (n) => { if (n.type === 'aggr_func') aggs.add(String(n.name).toUpperCase()); return false })
  if (ast.groupby?.columns?.length) steps.push('re-group by the GROUP BY columns')
  if (aggs.has('COUNT') || aggs.has('SUM')) steps.push('sum COUNT/SUM across shards')
  if (aggs.has('MIN')) steps.push('take the MIN across shards')
  if (aggs.has('MAX')) steps.push('take the MAX across shards')
  const { count, offset } = limitOf(ast)
  if (ast.orderby?.length) steps.push('ordered merge on ORDER BY')
  if (count !== null) {
    const k = offset ?? 0
    steps.push(k > 0 ? `each shard reads OFFSET+LIMIT = ${k + count} rows (${(k + count) * LOGICAL_SHARDS} rows in all), keep ${count} after skipping ${k}` : `keep the first ${count}`)
  }
  if (steps.length === 0) steps.push('concatenate rows')
  return steps.join('; ')
}

function classifyInsert(ast: Node, ctx: Ctx, type: string, usesLastInsertId: boolean, readsOther: boolean): Classification {
  const { layout } = ctx
  const reasons: Reason[] = []
  const columns: string[] | null = Array.isArray(ast.columns) ? ast.columns.map((c: unknown) => String(isObj(c) ? (c as Node).column ?? c : c).toLowerCase()) : null
  const values = ast.values
  if (isObj(values) && values.type === 'select') reasons.push('insert-select')
  else if (readsOther) reasons.push('cross-shard-subquery')
  if (usesLastInsertId) reasons.push('last-insert-id')
  if (!columns || !columns.includes(layout.primaryKey.toLowerCase())) reasons.push('insert-without-order-id')
  const upsert = type === 'replace' || !!ast.on_duplicate_update
  if (upsert && (layout.uniqueKeys ?? []).some((k) => !k.some((c) => c.toLowerCase() === layout.userColumn.toLowerCase()))) reasons.push('upsert-on-unique-key')
  let keys: KeyValue[] = []
  let dimension: KeyDimension = 'user'
  if (columns && isObj(values) && values.type === 'values') {
    for (const [dim, col] of [['user', layout.userColumn], ['order', layout.primaryKey]] as const) {
      const idx = columns.indexOf(col.toLowerCase())
      if (idx < 0) continue
      const found: KeyValue[] = []
      for (const row of values.values as Node[]) {
        const v = isObj(row.value?.[idx]) ? literalText(row.value[idx]) : undefined
        found.push(v === undefined ? null : v)
      }
      keys = found
      dimension = dim
      break
    }
  }
  if (reasons.length > 0) return verdict('unsupported', 'write', reasons, { dimension, keys, maxShards: null })
  // several rows are `multi` whatever their values: the digest folds the rows, so the verdict must not depend on them
  const shards = Math.min(keys.length, LOGICAL_SHARDS)
  if (shards <= 1) return verdict(dimension, 'write', [], { dimension, keys, maxShards: 1 })
  return verdict('multi', 'write', ['multi-row-insert'], { dimension, keys, maxShards: shards })
}
