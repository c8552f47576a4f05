/**
 * The plan one statement gets: its class, the logical shards and physical
 * tables it touches, the SQL each shard runs, the merge step, and which side
 * serves it at a cutover stage. Pure: the config is the topology.
 */
import type { ShardkitConfig } from '../config/schema.js'
import { STAGES, type Stage } from '../cutover/stages.js'
import { ShardkitError } from '../errors.js'
import { classifyId, shardFieldUnchecked } from '../idgen/layout.js'
import { LOGICAL_SHARDS, shardOfKey } from '../router/shard-function.js'
import type { Classification, KeyValue, SqlLayout } from './classify.js'
import type { MergeSpec } from './merge-spec.js'
import { classifyStatement } from './linter.js'
import { parseStatement, renderStatement } from './parse.js'

/** One physical target of a plan. */
export interface PlanTarget {
  readonly dimension: 'user' | 'merchant'
  readonly shard: number
  readonly host: string
  readonly database: string
  readonly table: string
  readonly sql: string
}

/** The plan for one statement. */
export interface StatementPlan extends Omit<Classification, 'keys'> {
  readonly statement: string
  /** Logical shards touched, ascending; null when only a lookup can tell (legacy order ids, unbound placeholders). */
  readonly shards: readonly number[] | null
  readonly lookup: boolean
  readonly targets: readonly PlanTarget[]
  readonly stage: Stage
  /** Which side serves the statement at `stage`, and why. */
  readonly servedBy: 'legacy' | 'shards'
  readonly servedNote: string
  readonly error?: string
}

/** The classifier's view of the config's legacy table. */
export function layoutOf(config: ShardkitConfig): SqlLayout {
  const l = config.legacy
  return { database: l.database, table: l.table, userColumn: l.userColumn, merchantColumn: l.merchantColumn, primaryKey: l.primaryKey }
}

/** Replaces `?` placeholders outside strings and comments with literals (tokenizer pass, not a regex). */
export function bindParams(sql: string, params: readonly unknown[]): string {
  let out = ''
  let p = 0
  let quote = 0
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i)
    if (quote !== 0) {
      if (c === 92 && quote !== 96) { out += sql[i]! + (sql[i + 1] ?? ''); i++; continue }
      if (c === quote) quote = 0
    } else if (c === 39 || c === 34 || c === 96) quote = c
    else if (c === 63) {
      if (p >= params.length) throw new ShardkitError('USAGE', `--params has ${params.length} values but the statement has more ? placeholders`, { argument: '--params' })
      out += literal(params[p++])
      continue
    }
    out += sql[i]
  }
  if (p < params.length) throw new ShardkitError('USAGE', `--params has ${params.length} values but the statement has ${p} ? placeholders`, { argument: '--params' })
  return out
}

function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL'
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  if (typeof v === 'boolean') return v ? '1' : '0'
  return "'" + String(v).replace(/\\/g, '\\\\').replace(/'/g, "''") + "'"
}

/** Finds the user shard of a legacy order id (the lookup table's answer), or null when the id is unknown. */
export type LegacyIdLookup = (orderId: string) => number | null

const DECIMAL = /^(0|[1-9][0-9]{0,18})$/

/** The logical shard of one key value, or null when a lookup (or a value) is needed. */
function shardOfValue(config: ShardkitConfig, dimension: Classification['dimension'], k: KeyValue, lookup?: LegacyIdLookup): { shard: number | null; lookup: boolean } {
  // MySQL compares '007' = 7, but the router takes canonical digits only: such a key is left to run time
  if (k === null || !DECIMAL.test(k) || BigInt(k) >= 2n ** 63n) return { shard: null, lookup: false }
  if (dimension !== 'order') return { shard: shardOfKey(k), lookup: false }
  if (classifyId(k, config.legacy.idCeiling) !== 'legacy') {
    // a shard field of 120..127 was never generated: no shard holds such an id
    const shard = shardFieldUnchecked(k)
    return { shard: shard < LOGICAL_SHARDS ? shard : null, lookup: false }
  }
  return { shard: lookup ? lookup(k) : null, lookup: true }
}

/** Logical shards for the key values, or null when a lookup (or a value) is needed. */
function shardsFor(config: ShardkitConfig, v: Classification, resolve?: LegacyIdLookup): { shards: number[] | null; lookup: boolean } {
  if (v.class === 'scatter') return { shards: Array.from({ length: LOGICAL_SHARDS }, (_, i) => i), lookup: false }
  if (!v.dimension || v.keys.length === 0 || v.class === 'other' || v.class === 'unparsed') return { shards: null, lookup: false }
  const set = new Set<number>()
  let lookup = false
  let unresolved = false
  for (const k of v.keys as KeyValue[]) {
    const s = shardOfValue(config, v.dimension, k, resolve)
    if (!s.lookup && s.shard === null) return { shards: null, lookup: false }
    lookup ||= s.lookup
    // an id the lookup does not know has no row anywhere: no shard to ask
    if (s.shard === null) unresolved = true
    else set.add(s.shard)
  }
  if (lookup && !resolve) return { shards: set.size > 0 && !unresolved ? [...set].sort((a, b) => a - b) : null, lookup: true }
  return { shards: [...set].sort((a, b) => a - b), lookup }
}

const SENTINEL_DB = 'shardkit_db_sentinel'
const SENTINEL_TABLE = 'shardkit_table_sentinel'

function retarget(node: unknown, layout: SqlLayout): void {
  if (Array.isArray(node)) { node.forEach((n) => retarget(n, layout)); return }
  if (typeof node !== 'object' || node === null) return
  const n = node as Record<string, unknown>
  if (typeof n.table === 'string' && 'db' in n && n.table.toLowerCase() === layout.table.toLowerCase() && (n.db == null || String(n.db).toLowerCase() === layout.database.toLowerCase())) {
    n.db = SENTINEL_DB
    n.table = SENTINEL_TABLE
  }
  for (const k of Object.keys(n)) retarget(n[k], layout)
}

/**
 * A read across shards with `LIMIT n OFFSET k` reads `k + n` rows from each
 * shard and skips after merging; one whose groups are re-grouped reads every
 * group (a group cut off on one shard would be merged short).
 */
function limitPerShard(ast: unknown, spec: MergeSpec | null): void {
  const a = (Array.isArray(ast) ? ast[0] : ast) as { limit?: { seperator?: string; value?: { type: string; value: unknown }[] } | null } | undefined
  const vals = a?.limit?.value
  if (!a?.limit || !vals || !spec) return
  if (spec.perShardLimit === 'drop') { a.limit = null; return }
  if (vals.length !== 2 || vals.some((v) => v.type !== 'number')) return
  const [count, offset] = a.limit.seperator === 'offset' ? [Number(vals[0]!.value), Number(vals[1]!.value)] : [Number(vals[1]!.value), Number(vals[0]!.value)]
  a.limit = { seperator: '', value: [{ type: 'number', value: count + offset }] }
}

/** A multi-row INSERT keeps, for one shard, only the rows whose key routes there. */
function rowsForShard(ast: unknown, keep: readonly boolean[]): unknown {
  const copy = JSON.parse(JSON.stringify(ast)) as Record<string, any>
  const a = Array.isArray(copy) ? copy[0] : copy
  if (a?.values?.type === 'values' && Array.isArray(a.values.values)) a.values.values = a.values.values.filter((_: unknown, i: number) => keep[i])
  return copy
}

/**
 * Plans one statement against the sharded layout at a cutover stage. A read
 * across shards carries `mergePlan`, which `mergeShardRows` runs over the
 * targets' results. With `opts.lookup` (the legacy id lookup), legacy order
 * ids get their shard too; without it their plan says `lookup: true`.
 * @throws ShardkitError `USAGE` when params do not match the placeholders or the stage is unknown
 * @example planStatement(config, 'SELECT * FROM orders WHERE user_id = ?', ['42']).shards // [42]
 */
export function planStatement(config: ShardkitConfig, sql: string, params: readonly unknown[] = [], opts: { stage?: Stage; lookup?: LegacyIdLookup } = {}): StatementPlan {
  const stage = opts.stage ?? 'shards'
  if (!STAGES.includes(stage)) throw new ShardkitError('USAGE', `--stage must be one of ${STAGES.join(', ')} (got "${stage}")`, { argument: '--stage' })
  const layout = layoutOf(config)
  const bound = params.length > 0 ? bindParams(sql, params) : sql
  const v = classifyStatement(bound, layout)
  const { shards, lookup } = shardsFor(config, v, opts.lookup)
  const targets: PlanTarget[] = []
  // per-shard SQL keeps the ? placeholders: the caller binds the same params on each shard
  const parsed = parseStatement(sql)
  if (shards && parsed.ok && v.class !== 'other' && v.class !== 'unparsed') {
    retarget(parsed.ast, layout)
    if (shards.length > 1) limitPerShard(parsed.ast, v.mergePlan)
    const multiRowInsert = v.reasons.includes('multi-row-insert')
    const rowShards = multiRowInsert ? v.keys.map((k) => shardOfValue(config, v.dimension, k, opts.lookup).shard) : []
    const template = renderStatement(parsed.ast, parsed.dialect)
    // order ids carry the user shard; a write's merchant copy follows the row's merchant_id (written by the dual-write store)
    const dimension: 'user' | 'merchant' = v.dimension === 'merchant' ? 'merchant' : 'user'
    for (const shard of shards) {
      const p = config.dimensions[dimension].shards[shard]!
      const text = multiRowInsert ? renderStatement(rowsForShard(parsed.ast, rowShards.map((s) => s === shard)), parsed.dialect) : template
      targets.push({ dimension, shard, host: p.host, database: p.database, table: p.table, sql: text.split('`' + SENTINEL_DB + '`').join('`' + p.database + '`').split('`' + SENTINEL_TABLE + '`').join('`' + p.table + '`') })
    }
  }
  const { servedBy, servedNote } = served(stage, v.kind)
  const { keys: _keys, ...rest } = v
  return { ...rest, statement: sql, shards, lookup, targets, stage, servedBy, servedNote }
}

function served(stage: Stage, kind: Classification['kind']): { servedBy: 'legacy' | 'shards'; servedNote: string } {
  const i = STAGES.indexOf(stage)
  if (kind === 'write') {
    return i >= STAGES.indexOf('write-shards')
      ? { servedBy: 'shards', servedNote: `at ${stage} writes go to the user shards first (the merchant copy, by the row's merchant_id${stage === 'write-shards' ? ', and legacy' : ''} as secondaries)` }
      : { servedBy: 'legacy', servedNote: `at ${stage} writes go to the legacy primary${i >= 1 ? ', then the user and merchant shards as secondaries' : ''}` }
  }
  return i >= STAGES.indexOf('read-shards')
    ? { servedBy: 'shards', servedNote: stage === 'read-shards' ? 'at read-shards reads go to the shards for the users in the read percentage, else legacy' : `at ${stage} reads go to the shards` }
    : { servedBy: 'legacy', servedNote: `at ${stage} reads go to the legacy table${stage === 'shadow-read' ? ' (a sample is also read from the shards and compared)' : ''}` }
}
