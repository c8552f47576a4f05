/**
 * Small readers of node-sql-parser's AST (MySQL dialect) shared by the
 * classifier, the join check and the merge planner. Pure.
 */
import type { SqlLayout } from './types.js'

/** An AST node as node-sql-parser builds it. */
export type Node = Record<string, any>

/** True for a non-null object. */
export const isObj = (v: unknown): v is Node => typeof v === 'object' && v !== null

/** A key value found in the statement: a literal's text, or null for a placeholder. */
export type KeyValue = string | null

/** A table reference: which table, its alias, and how deep in subqueries it sits. */
export interface TableRef {
  readonly db: string | null
  readonly table: string
  readonly as: string | null
  readonly depth: number
}

/** Every table reference in the tree, with whether it sits inside a subquery (a top-level UNION is split by the caller first). */
export function tableRefs(node: unknown, depth: number, out: TableRef[]): void {
  if (Array.isArray(node)) { for (const x of node) tableRefs(x, depth, out); return }
  if (!isObj(node)) return
  // for-in, not Object.keys: the walks run per statement and the key arrays were most of the garbage
  for (const key in node) {
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

/** Whether any node in the tree satisfies `pred` (UNION branches included). */
export function anyNode(node: unknown, pred: (n: Node) => boolean): boolean {
  if (Array.isArray(node)) return node.some((x) => anyNode(x, pred))
  if (!isObj(node)) return false
  if (pred(node)) return true
  for (const k in node) if (anyNode(node[k], pred)) return true
  return false
}

/** The upper-case name of a function or aggregate node, or ''. */
export function fnName(n: Node): string {
  if (n.type === 'aggr_func') return String(n.name).toUpperCase()
  if (n.type !== 'function') return ''
  const name = n.name
  if (typeof name === 'string') return name.toUpperCase()
  const parts = name?.name
  return Array.isArray(parts) && parts.length > 0 ? String(parts[parts.length - 1].value).toUpperCase() : ''
}

/**
 * A literal's text as a key value, null for a placeholder, undefined for
 * anything that is not a plain number or string (NULL, hex, expressions).
 * Numbers above 2^53 come from the parser as `bigint` nodes with their digits.
 */
export function literalText(n: Node): KeyValue | undefined {
  if (n.type === 'number' || n.type === 'bigint' || n.type === 'single_quote_string' || n.type === 'double_quote_string' || n.type === 'string') return String(n.value)
  if (n.type === 'param' || (n.type === 'origin' && n.value === '?')) return null
  return undefined
}

/** The names (table and aliases, lower-case) by which the statement refers to the sharded table. */
export function shardedNames(layout: SqlLayout, refs: readonly TableRef[]): Set<string> {
  const names = new Set<string>([layout.table.toLowerCase()])
  for (const r of refs) if (r.as) names.add(r.as.toLowerCase())
  return names
}

/** Whether a table reference is the sharded table. */
export function isShardedRef(layout: SqlLayout, r: { db: string | null; table: string }): boolean {
  return r.table.toLowerCase() === layout.table.toLowerCase() && (r.db == null || r.db.toLowerCase() === layout.database.toLowerCase())
}

/** A matcher for `column` of the sharded table (unqualified, or qualified by one of `names`). */
export function columnMatcher(names: ReadonlySet<string>, column: string): (n: Node) => boolean {
  const c = column.toLowerCase()
  return (n) => n.type === 'column_ref' && typeof n.column === 'string' && n.column.toLowerCase() === c && (n.table == null || names.has(String(n.table).toLowerCase()))
}

/** The terms of a top-level AND chain (one term when the expression is not an AND). */
export function andTerms(expr: unknown): Node[] {
  if (!isObj(expr)) return []
  if (expr.type === 'binary_expr' && String(expr.operator).toUpperCase() === 'AND' ) return [...andTerms(expr.left), ...andTerms(expr.right)]
  return [expr]
}

/** Structural equality of two expressions (source locations and parentheses ignored). */
export function sameExpr(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b)
}

function canonical(n: unknown): string {
  return JSON.stringify(n, (k, v) => (k === 'loc' || k === 'parentheses' || k === 'collate' ? undefined : typeof v === 'string' && (k === 'column' || k === 'table' || k === 'name' || k === 'value') ? v.toLowerCase() : v))
}

const isLogical = (n: unknown, op?: string): n is Node => isObj(n) && n.type === 'binary_expr' && (op ? String(n.operator).toUpperCase() === op : ['AND', 'OR'].includes(String(n.operator).toUpperCase()))

/**
 * node-sql-parser 5 reads `a OR b AND c` as `(a OR b) AND c`: it chains AND
 * and OR left to right at one precedence. This rebuilds every unparenthesised
 * chain with SQL's precedence (AND before OR), in place, so a key equality is
 * an AND term only where the server sees one. Source text is unaffected (the
 * planner renders its own parse, which prints back as written).
 */
export function normalizeLogic(node: unknown): void {
  if (Array.isArray(node)) { for (const x of node) normalizeLogic(x); return }
  if (!isObj(node)) return
  for (const k in node) {
    const v = node[k]
    if (isLogical(v)) node[k] = rebuildChain(v)
    normalizeLogic(node[k])
  }
}

function rebuildChain(root: Node): Node {
  const operands: Node[] = []
  const ops: string[] = []
  const walk = (n: Node, top: boolean): void => {
    if (isLogical(n) && (top || !n.parentheses)) {
      walk(n.left, false)
      ops.push(String(n.operator).toUpperCase())
      walk(n.right, false)
    } else operands.push(n)
  }
  walk(root, true)
  const and = (xs: Node[]): Node => xs.reduce((l, r) => ({ type: 'binary_expr', operator: 'AND', left: l, right: r }))
  const groups: Node[][] = [[operands[0]!]]
  ops.forEach((op, i) => {
    if (op === 'OR') groups.push([operands[i + 1]!])
    else groups[groups.length - 1]!.push(operands[i + 1]!)
  })
  const rebuilt = groups.map(and).reduce((l, r) => ({ type: 'binary_expr', operator: 'OR', left: l, right: r }))
  if (root.parentheses) rebuilt.parentheses = true
  return rebuilt
}

/** Operators node-sql-parser 5 reads at the wrong precedence (`a = 1 XOR b = 2` becomes `a = (1 XOR b) = 2`). */
export function misreadOperator(ast: unknown): string | null {
  let found: string | null = null
  anyNode(ast, (n) => {
    if (n.type === 'binary_expr' && ['XOR', '||', '&&'].includes(String(n.operator).toUpperCase())) found = String(n.operator).toUpperCase()
    return found !== null
  })
  return found
}
