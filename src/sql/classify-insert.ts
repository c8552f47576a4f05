/**
 * Classifies INSERT and REPLACE on the sharded table (pure): the row's user
 * (or order id) picks its shard, whether the values come as VALUES rows or
 * as `INSERT ... SET col = value`. An upsert whose ON DUPLICATE KEY UPDATE
 * assigns a shard key would move the row to another shard in place.
 */
import { LOGICAL_SHARDS } from '../router/shard-function.js'
import { isObj, literalText, type KeyValue, type Node } from './ast.js'
import { AFFECTED_MERGE } from './merge-spec.js'
import type { Reason } from './reasons.js'
import type { KeyDimension } from './types.js'
import { verdict, type Classification, type Ctx } from './verdict.js'

/** Column names and value rows of an INSERT, from `(cols) VALUES (...)` or `SET col = value`. */
export function insertRows(ast: Node): { columns: string[] | null; rows: Node[][] | null } {
  if (Array.isArray(ast.set) && ast.set.length > 0) {
    return { columns: (ast.set as Node[]).map((s) => String(s.column).toLowerCase()), rows: [(ast.set as Node[]).map((s) => s.value as Node)] }
  }
  const columns: string[] | null = Array.isArray(ast.columns) ? ast.columns.map((c: unknown) => String(isObj(c) ? (c as Node).column ?? c : c).toLowerCase()) : null
  const values = ast.values
  const rows = isObj(values) && values.type === 'values' ? (values.values as Node[]).map((row) => (Array.isArray(row.value) ? (row.value as Node[]) : [])) : null
  return { columns, rows }
}

/** Classifies one INSERT / REPLACE (`readsOther`: it names another table or the sharded one twice). */
export function classifyInsert(ast: Node, ctx: Ctx, type: string, usesLastInsertId: boolean, readsOther: boolean): Classification {
  const { layout } = ctx
  const reasons: Reason[] = []
  const { columns, rows } = insertRows(ast)
  if (isObj(ast.values) && ast.values.type === 'select') reasons.push('insert-select')
  else if (readsOther) reasons.push('cross-shard-subquery')
  if (usesLastInsertId) reasons.push('last-insert-id')
  if (!columns || !columns.includes(layout.primaryKey.toLowerCase())) reasons.push('insert-without-order-id')
  const upsert = type === 'replace' || !!ast.on_duplicate_update
  if (upsert && (layout.uniqueKeys ?? []).some((k) => !k.some((c) => c.toLowerCase() === layout.userColumn.toLowerCase()))) reasons.push('upsert-on-unique-key')
  // an upsert that assigns a key would move the existing row to another shard's key in place
  for (const s of (ast.on_duplicate_update?.set ?? []) as Node[]) {
    const col = String(s.column).toLowerCase()
    if (col === layout.userColumn.toLowerCase() || col === layout.merchantColumn.toLowerCase()) reasons.push('shard-key-update')
    else if (col === layout.primaryKey.toLowerCase()) reasons.push('order-id-update')
  }
  let keys: KeyValue[] = []
  let dimension: KeyDimension = 'user'
  if (columns && rows) {
    for (const [dim, col] of [['user', layout.userColumn], ['order', layout.primaryKey]] as const) {
      const idx = columns.indexOf(col.toLowerCase())
      if (idx < 0) continue
      keys = rows.map((row) => {
        const v = isObj(row[idx]) ? literalText(row[idx]!) : undefined
        return v === undefined ? null : v
      })
      dimension = dim
      break
    }
  }
  if (reasons.length > 0) return verdict('unsupported', 'write', [...new Set(reasons)], { dimension, keys, maxShards: null })
  // several rows are `multi` whatever their values: the rows go in batches per shard
  const shards = Math.min(keys.length, LOGICAL_SHARDS)
  if (shards <= 1) return verdict(dimension, 'write', [], { dimension, keys, maxShards: 1 })
  return verdict('multi', 'write', ['multi-row-insert'], { dimension, keys, maxShards: shards, mergePlan: AFFECTED_MERGE })
}
