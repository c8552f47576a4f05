/**
 * Classifies one parsed statement against the sharded layout (pure, on
 * node-sql-parser's AST): which dimension and how many shards serve it, or
 * why the sharded layout cannot serve it, and what to write instead.
 *
 * The rule it never breaks: a statement is called single-shard only when
 * every row it reads or changes belongs to one key of one dimension, so
 * running it on that key's shard gives the single-database result. Joins
 * must tie every table by a key equality in plain AND terms (joins.ts);
 * reads across shards must have an exact merge (merge-spec.ts).
 */
import { LOGICAL_SHARDS } from '../router/shard-function.js'
import { anyNode, columnMatcher, fnName, isObj, isShardedRef, literalText, misreadOperator, normalizeLogic, shardedNames, tableRefs, type KeyValue, type Node, type TableRef } from './ast.js'
import { joinStaysOnShard } from './joins.js'
import { AFFECTED_MERGE, planMerge, type MergeSpec } from './merge-spec.js'
import type { Reason } from './reasons.js'
import { SQL_CLASSES, type KeyDimension, type SqlClass, type SqlLayout } from './types.js'
import { classifyInsert } from './classify-insert.js'
import { ADVISORY_REASONS, distinctCount, verdict, type Classification, type Ctx } from './verdict.js'

export { SQL_CLASSES, ADVISORY_REASONS, type KeyDimension, type SqlClass, type SqlLayout, type KeyValue, type Classification }

/** Values a WHERE expression pins `column` to: a list, or undefined when unconstrained. */
function keysFor(expr: unknown, isCol: (n: Node) => boolean): KeyValue[] | undefined {
  if (!isObj(expr) || expr.type !== 'binary_expr') return undefined
  const op = String(expr.operator).toUpperCase()
  if (op === 'AND') {
    const l = keysFor(expr.left, isCol)
    const r = keysFor(expr.right, isCol)
    if (l && r) return distinctCount(l) <= distinctCount(r) ? l : r
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

const DIMENSIONS: readonly KeyDimension[] = ['user', 'order', 'merchant']

/** Routes a WHERE clause by the dimension with the fewest distinct keys (user first, then order id, then merchant). */
function route(where: unknown, ctx: Ctx, allowed: readonly KeyDimension[]): { dimension: KeyDimension; keys: KeyValue[] } | null {
  const { layout } = ctx
  const column: Record<KeyDimension, string> = { user: layout.userColumn, order: layout.primaryKey, merchant: layout.merchantColumn }
  let best: { dimension: KeyDimension; keys: KeyValue[] } | null = null
  for (const dimension of DIMENSIONS) {
    if (!allowed.includes(dimension)) continue
    const keys = keysFor(where, columnMatcher(ctx.names, column[dimension]))
    if (keys && (!best || distinctCount(keys) < distinctCount(best.keys))) best = { dimension, keys }
  }
  return best
}

const dedupe = (xs: Reason[]): Reason[] => [...new Set(xs)]

/**
 * Classifies one statement's AST (node-sql-parser, MySQL dialect). The AST's
 * AND/OR chains are rebuilt with SQL's precedence first (in place).
 * @example classifyAst(parser.astify('SELECT * FROM orders WHERE user_id = 5'), layout).class // 'user'
 */
export function classifyAst(ast: unknown, layout: SqlLayout): Classification {
  if (Array.isArray(ast)) {
    if (ast.length !== 1) return verdict('unparsed', 'other', ['several-statements'])
    ast = ast[0]
  }
  if (!isObj(ast)) return verdict('unparsed', 'other', ['several-statements'])
  const misread = misreadOperator(ast)
  if (misread) return { ...verdict('unparsed', 'other', ['parse-error']), error: `the SQL parser reads ${misread} at the wrong precedence, so this statement cannot be judged: write it with AND / OR / parentheses` } as Classification
  normalizeLogic(ast)
  return classifyNormal(ast, layout)
}

/** Classifies an AST whose AND/OR precedence is already right (fast-parse.ts builds it so). */
export function classifyNormalized(ast: Node, layout: SqlLayout): Classification {
  return classifyNormal(ast, layout)
}

function classifyNormal(ast: Node, layout: SqlLayout): Classification {
  if (ast.type === 'select' && isObj(ast._next)) return classifyUnion(ast, layout)
  const type = String(ast.type)
  const refs: TableRef[] = []
  tableRefs(ast, 0, refs)
  const sharded = refs.filter((r) => isShardedRef(layout, r))
  const usesLastInsertId = anyNode(ast, (n) => fnName(n) === 'LAST_INSERT_ID')
  if (sharded.length === 0) {
    if (usesLastInsertId) return verdict('unsupported', 'read', ['last-insert-id'])
    return verdict('other', type === 'select' ? 'read' : 'other', type === 'transaction' ? ['transaction'] : [])
  }
  const ctx: Ctx = { layout, names: shardedNames(layout, sharded) }
  if (type === 'insert' || type === 'replace') return classifyInsert(ast, ctx, type, usesLastInsertId, refs.length > sharded.length || sharded.length > 1)
  const kind = type === 'select' ? 'read' : 'write'
  const reasons: Reason[] = []
  let allowed: readonly KeyDimension[] = DIMENSIONS
  let userTied = true
  if (sharded.length > 1 || refs.length > sharded.length) {
    const tables: Node[] = (type === 'update' ? ast.table : ast.from) ?? []
    const selfJoin = refs.length === sharded.length && refs.every((r) => r.depth === 0) && tables.length === refs.length
    if (selfJoin) {
      // a join tied by user (or order id) stays on a user shard; tied by merchant, on a merchant shard
      userTied = joinStaysOnShard(tables, ast.where, [layout.userColumn, layout.primaryKey])
      const merchantTied = joinStaysOnShard(tables, ast.where, [layout.merchantColumn, layout.primaryKey])
      allowed = [...(userTied ? (['user', 'order'] as const) : []), ...(merchantTied ? (['merchant'] as const) : [])]
      if (allowed.length === 0) reasons.push('cross-shard-join')
    } else reasons.push(refs.some((r) => r.depth > 0) ? 'cross-shard-subquery' : 'cross-shard-join')
  }
  if (type === 'update') {
    for (const s of (ast.set ?? []) as Node[]) {
      const col = String(s.column).toLowerCase()
      if (col === layout.userColumn.toLowerCase() || col === layout.merchantColumn.toLowerCase()) reasons.push('shard-key-update')
      else if (col === layout.primaryKey.toLowerCase()) reasons.push('order-id-update')
    }
  }
  const r = route(ast.where, ctx, allowed)
  // with no key, every user shard is read: a join must then be tied by user
  if (!r && !userTied && !reasons.includes('cross-shard-join')) reasons.push('cross-shard-join')
  const shards = r ? Math.min(distinctCount(r.keys), LOGICAL_SHARDS) : LOGICAL_SHARDS
  const single = r !== null && shards === 1
  if (kind === 'write') {
    if (!r) reasons.push('write-without-shard-key')
    else if (r.dimension === 'merchant') reasons.push('write-by-merchant-only')
    // each shard would apply the LIMIT to its own rows
    else if (!single && ast.limit?.value?.length) reasons.push('write-limit-across-shards')
  }
  let mergePlan: MergeSpec | null = null
  if (!single && kind === 'read') {
    const keyColumn = r?.dimension === 'merchant' ? layout.merchantColumn : layout.userColumn
    const groupCols: Node[] = ast.groupby?.columns ?? []
    const m = planMerge(ast, groupCols.some(columnMatcher(ctx.names, keyColumn)))
    reasons.push(...m.reasons)
    mergePlan = m.spec
  } else if (!single) mergePlan = AFFECTED_MERGE
  if (!single && ast.locking_read) reasons.push('lock-across-shards')
  if (reasons.length > 0) return verdict('unsupported', kind, dedupe(reasons), { dimension: r?.dimension ?? null, keys: r?.keys ?? [], maxShards: shards })
  if (!r) return verdict('scatter', kind, offsetReasons(ast), { dimension: 'user', maxShards: LOGICAL_SHARDS, mergePlan })
  if (single) return verdict(r.dimension, kind, [], { dimension: r.dimension, keys: r.keys, maxShards: 1 })
  return verdict('multi', kind, offsetReasons(ast), { dimension: r.dimension, keys: r.keys, maxShards: shards, mergePlan })
}

/** Any OFFSET clause counts, whatever its value: the digest hides the value, and page 1's `OFFSET 0` shares a digest with page 1,000's. */
function offsetReasons(ast: Node): Reason[] {
  return (ast.limit?.value ?? []).length === 2 ? ['deep-offset'] : []
}

const SINGLE: readonly SqlClass[] = ['user', 'merchant', 'order']

/**
 * A UNION is single-shard when every branch is, by one key of one dimension.
 * Across shards only UNION ALL of plain row reads merges exactly (each shard
 * runs the whole UNION over its rows; the results are concatenated).
 */
function classifyUnion(ast: Node, layout: SqlLayout): Classification {
  const branches: Node[] = []
  const ops: string[] = []
  for (let n: Node | null = ast; isObj(n); n = n._next ?? null) {
    branches.push({ ...n, _next: null, set_op: null })
    if (isObj(n._next)) ops.push(String(n.set_op ?? 'union').toLowerCase())
  }
  const vs = branches.map((b) => classifyNormal(b, layout))
  const failing = vs.filter((v) => v.class === 'unsupported' || v.class === 'unparsed')
  if (failing.length > 0) {
    const why = dedupe(failing.flatMap((v) => v.reasons.filter((r) => !ADVISORY_REASONS.has(r))))
    return verdict('unsupported', 'read', why.length > 0 ? why : ['union-across-shards'])
  }
  if (vs.every((v) => v.class === 'other')) return verdict('other', 'read', [])
  if (vs.some((v) => v.class === 'other')) return verdict('unsupported', 'read', ['union-across-shards'])
  const dims = new Set(vs.map((v) => v.dimension))
  const keys = vs.flatMap((v) => v.keys)
  if (vs.every((v) => SINGLE.includes(v.class)) && dims.size === 1 && distinctCount(keys) === 1) {
    const d = vs[0]!.dimension!
    return verdict(d, 'read', [], { dimension: d, keys: [keys[0]!], maxShards: 1 })
  }
  const plain = branches.every((b) => !b.groupby && !b.having && !b.distinct && !b.orderby && !b.limit && !b.locking_read && !anyNode(b.columns, (n) => n.type === 'aggr_func' || fnName(n) !== '' && ['STDDEV', 'BIT_OR', 'BIT_AND', 'BIT_XOR', 'VARIANCE'].includes(fnName(n))))
  if (!plain || ops.some((o) => o !== 'union all')) return verdict('unsupported', 'read', ['union-across-shards'])
  const mergePlan: MergeSpec = { kind: 'rows', groupBy: [], combine: null, orderBy: [], limit: null, offset: 0, perShardLimit: 'none' }
  const d = vs[0]!.dimension
  if (dims.size === 1 && d !== null && vs.every((v) => v.class !== 'scatter')) {
    return verdict('multi', 'read', [], { dimension: d, keys, maxShards: Math.min(distinctCount(keys), LOGICAL_SHARDS), mergePlan })
  }
  // every row lies on exactly one user shard, whatever routed its branch
  return verdict('scatter', 'read', [], { dimension: 'user', maxShards: LOGICAL_SHARDS, mergePlan })
}
