/**
 * The differential oracle of SQL lint (issue 18). A legacy `orders` table
 * holds rows chosen so shards differ (users that share a shard, merchants on
 * other shards, legacy and new order ids, the ids the catalogue names); a
 * provisioned sharded copy holds the same rows, each on its user shard and on
 * its merchant shard. For one statement the oracle runs it on legacy, then
 * runs the plan `sql explain` produces (one shard, or every target plus the
 * stated merge) and compares results, and for writes the affected rows and
 * the table contents afterwards (inside a transaction it rolls back).
 */
import type { PoolConnection } from 'mysql2/promise'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { encodeId } from '../../src/idgen/layout.js'
import { provision } from '../../src/provision/index.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { openRuntime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { mergeAffectedRows, mergeShardRows, type ShardRows } from '../../src/sql/merge-rows.js'
import { parseStatement, renderStatement } from '../../src/sql/parse.js'
import { planStatement, type StatementPlan } from '../../src/sql/planner.js'
import { adminPool, createLegacyTable } from '../support/db.js'

/** The plan function under test (`planStatement`, or a deliberately broken one in the test of the test). */
export type PlanFn = typeof planStatement

export const USERS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 42, 77, 121, 241, 122, 75, 195]
export const MERCHANTS = [3, 4, 5, 7, 8, 9, 10, 20, 30, 40, 121, 500, 123]
const STATUSES = ['new', 'paid', 'shipped', 'cancelled', 'draft']
/** Legacy ids (at or below the ceiling) the catalogue names, with the user each belongs to. */
const LEGACY_IDS: [string, number][] = [['55', 2], ['77', 4], ['99', 121], ['101', 1], ['202', 2], ['301', 5], ['302', 6], ['1234', 8], ['123456', 3], ['4', 8], ['5', 8]]
/** New ids (above the ceiling) the catalogue names: their shard field decides the user. */
const NEW_IDS = ['1234567890123', '7205759403792793601']

/** One legacy row. */
export interface OrderRow {
  order_id: string
  user_id: number
  merchant_id: number
  status: string
  total_cents: number
  note: string | null
  phone: string | null
  created_at: string
}

/** The rows: deterministic, unique created_at and total_cents (so ORDER BY has no ties), statuses and NULLs spread. */
export function oracleRows(): OrderRow[] {
  const rows: OrderRow[] = []
  let n = 0
  const add = (order_id: string, user: number): void => {
    const created = new Date(Date.UTC(2025, 0, 1) + n * 3_600_007)
    rows.push({
      order_id,
      user_id: user,
      merchant_id: MERCHANTS[(n * 7 + user) % MERCHANTS.length]!,
      status: STATUSES[(n * 3 + user) % STATUSES.length]!,
      total_cents: 100 + ((n * 7919) % 100_000),
      note: n % 4 === 0 ? null : `note ${n % 6}`,
      phone: n % 9 === 0 ? '555-0100' : null,
      created_at: created.toISOString().replace('T', ' ').replace('Z', ''),
    })
    n++
  }
  for (const [id, user] of LEGACY_IDS) add(id, user)
  for (const id of NEW_IDS) add(id, Number(BigInt(id) % 128n))
  USERS.forEach((user, u) => {
    // 2..7 orders per user: shards hold different numbers of rows
    for (let k = 0; k < 2 + (u % 6); k++) add(encodeId({ time: 31_536_000_000 + n * 1000, worker: 1, sequence: k, shard: shardOfKey(user) }), user)
  })
  return rows
}

/**
 * The legacy id lookup the router would consult, built from the rows (order
 * id -> user shard). An id no row has is sent to shard 0: no shard holds it,
 * so any shard gives the answer (no rows, or COUNT(*) = 0).
 */
export function lookupOf(rows: readonly OrderRow[]): (id: string) => number | null {
  const byId = new Map(rows.map((r) => [r.order_id, shardOfKey(r.user_id)]))
  return (id) => byId.get(id) ?? 0
}

/** Creates the legacy table with the rows, provisions the 240 shard tables and copies each row to its user and merchant shard. */
export async function loadOracleFleet(config: ShardkitConfig, rows: readonly OrderRow[]): Promise<void> {
  await createLegacyTable(config)
  const rt = openRuntime(config)
  try {
    const report = await provision(rt)
    if (report.conflicts.length > 0) throw new Error(`provision conflicts: ${report.conflicts.map((c) => `${c.database}.${c.table ?? ''}: ${c.differences.join(', ')}`).join('; ')}`)
  } finally {
    await rt.close()
  }
  const pool = adminPool(config.legacy.url)
  try {
    const legacy = qualified(config.legacy.database, config.legacy.table)
    const cols = '(order_id, user_id, merchant_id, status, total_cents, currency, items, address, phone, note, version, created_at, updated_at)'
    const values = rows.map((r) => [r.order_id, r.user_id, r.merchant_id, r.status, r.total_cents, 'CNY', '[]', null, r.phone, r.note, 1, r.created_at, r.created_at])
    await pool.query(`INSERT INTO ${legacy} ${cols} VALUES ?`, [values])
    for (const dim of ['user', 'merchant'] as const) {
      const column = dim === 'user' ? 'user_id' : 'merchant_id'
      const byShard = new Map<number, number[]>()
      for (const r of rows) {
        const s = shardOfKey(r[column])
        byShard.set(s, [...(byShard.get(s) ?? []), r[column]])
      }
      for (const [shard, keys] of byShard) {
        const p = config.dimensions[dim].shards[shard]!
        await pool.query(`INSERT INTO ${qualified(p.database, p.table)} SELECT * FROM ${legacy} WHERE ${column} IN (?)`, [[...new Set(keys)]])
      }
    }
  } finally {
    await pool.end()
  }
}

/** What the oracle found for one statement. */
export interface OracleVerdict {
  readonly sql: string
  readonly class: string
  /** `checked`: the plan's claim held; `skipped`: unsupported/other/unparsed claims nothing; `failed`: it did not hold. */
  readonly outcome: 'checked' | 'skipped' | 'failed'
  readonly detail?: string
  /** Shards the plan ran on. */
  readonly targets?: number
  /** Of those, how many returned rows (reads): more than one means the data made the merge matter. */
  readonly shardsWithRows?: number
}

type Row = readonly unknown[]
const text = (v: unknown): string => (v === null || v === undefined ? '\u0000NULL' : Buffer.isBuffer(v) ? v.toString('hex') : String(v))
const rowText = (r: Row): string => r.map(text).join('\u0001')
const bag = (rows: readonly Row[]): string[] => rows.map(rowText).sort()

async function read(conn: PoolConnection, sql: string): Promise<ShardRows> {
  const [rows, fields] = (await conn.query({ sql, rowsAsArray: true })) as unknown as [Row[], { name: string; columnType: number }[]]
  return { rows, fields: (fields ?? []).map((f) => ({ name: f.name, columnType: f.columnType })) }
}

async function write(conn: PoolConnection, sql: string): Promise<number> {
  const [res] = (await conn.query(sql)) as unknown as [{ affectedRows: number }]
  return res.affectedRows
}

/** The statement with its top-level LIMIT removed (every row a LIMIT without ORDER BY may pick from). */
function withoutLimit(sql: string): string | null {
  const p = parseStatement(sql)
  if (!p.ok) return null
  const ast = (Array.isArray(p.ast) ? p.ast[0] : p.ast) as { limit?: unknown; _next?: unknown; orderby?: unknown }
  let last = ast
  while (last._next) last = last._next as typeof ast
  last.limit = null
  return renderStatement(p.ast, p.dialect)
}

const orderedOf = (sql: string): boolean => {
  const p = parseStatement(sql)
  if (!p.ok) return false
  let a = (Array.isArray(p.ast) ? p.ast[0] : p.ast) as { orderby?: unknown[] | null; _next?: unknown }
  while (a._next) a = a._next as typeof a
  return Array.isArray(a.orderby) && a.orderby.length > 0
}
const limitedOf = (sql: string): boolean => /\blimit\b/i.test(sql)

/** Compares a legacy read with the sharded answer. Returns the difference in words, or null. */
async function compareReads(conn: PoolConnection, sql: string, legacy: ShardRows, sharded: ShardRows): Promise<string | null> {
  const ordered = orderedOf(sql)
  if (limitedOf(sql) && !ordered) {
    // any `limit` rows are right: same count, each one a row of the unlimited result
    const all = withoutLimit(sql)
    if (all === null) return 'cannot remove LIMIT to check a LIMIT without ORDER BY'
    const pool = new Set(bag((await read(conn, all)).rows))
    if (sharded.rows.length !== legacy.rows.length) return `LIMIT without ORDER BY: legacy ${legacy.rows.length} rows, sharded ${sharded.rows.length}`
    const stray = sharded.rows.find((r) => !pool.has(rowText(r)))
    return stray ? `a row the legacy statement cannot return: ${rowText(stray)}` : null
  }
  const a = ordered ? legacy.rows.map(rowText) : bag(legacy.rows)
  const b = ordered ? sharded.rows.map(rowText) : bag(sharded.rows)
  if (a.length === b.length && a.every((x, i) => x === b[i])) return null
  const i = a.findIndex((x, k) => x !== b[k])
  return `legacy ${a.length} rows, sharded ${b.length}; first difference at ${i}: legacy ${JSON.stringify(a[i] ?? null)} vs sharded ${JSON.stringify(b[i] ?? null)}`
}

/** The order ids an UPDATE/DELETE's WHERE matches (before it runs), or null when it cannot be read. */
async function matchingIds(conn: PoolConnection, sql: string): Promise<string[] | null> {
  const p = parseStatement(sql)
  if (!p.ok) return null
  const ast = (Array.isArray(p.ast) ? p.ast[0] : p.ast) as { type: string; where?: unknown; table?: unknown; from?: unknown }
  const from = ast.type === 'update' ? ast.table : ast.from
  const select = { type: 'select', columns: [{ expr: { type: 'column_ref', table: null, column: 'order_id' }, as: null }], from, where: ast.where ?? null }
  return (await read(conn, renderStatement(select, p.dialect))).rows.map((r) => text(r[0]))
}

/** All rows of the user dimension, as one result (writes land there first). */
async function userShardContents(conn: PoolConnection, config: ShardkitConfig): Promise<string[]> {
  const parts = config.dimensions.user.shards.map((p) => `SELECT * FROM ${qualified(p.database, p.table)}`)
  return bag((await read(conn, parts.join(' UNION ALL '))).rows)
}

/**
 * Runs one statement through the oracle on `conn` (whose default database is
 * the legacy one). Writes run inside a transaction that is rolled back.
 */
export async function checkStatement(conn: PoolConnection, config: ShardkitConfig, sql: string, plan: PlanFn, lookup: (id: string) => number | null): Promise<OracleVerdict> {
  let p: StatementPlan
  try {
    p = plan(config, sql, [], { lookup })
  } catch (err) {
    return { sql, class: '?', outcome: 'failed', detail: `explain threw: ${(err as Error).message}` }
  }
  if (p.class === 'unsupported' || p.class === 'other' || p.class === 'unparsed') return { sql, class: p.class, outcome: 'skipped' }
  const single = p.class === 'user' || p.class === 'merchant' || p.class === 'order'
  if (single && p.targets.length > 1) return { sql, class: p.class, outcome: 'failed', detail: `single-shard class with ${p.targets.length} targets` }
  if (!single && p.targets.length > 0 && !p.mergePlan) return { sql, class: p.class, outcome: 'failed', detail: 'a plan across shards without a merge' }
  const fail = (detail: string): OracleVerdict => ({ sql, class: p.class, outcome: 'failed', detail })
  try {
    if (p.kind === 'read') {
      const legacy = await read(conn, sql)
      const results: ShardRows[] = []
      for (const t of p.targets) results.push(await read(conn, t.sql))
      // a single-shard plan's answer is that shard's rows; no target means no shard holds a row
      const sharded = single ? results[0] ?? { fields: legacy.fields, rows: [] } : mergeShardRows(p.mergePlan!, results)
      const diff = await compareReads(conn, sql, legacy, sharded)
      return diff ? fail(diff) : { sql, class: p.class, outcome: 'checked', targets: p.targets.length, shardsWithRows: results.filter((r) => r.rows.length > 0).length }
    }
    const candidates = limitedOf(sql) && !orderedOf(sql) ? await matchingIds(conn, sql) : null
    await conn.query('START TRANSACTION')
    try {
      const legacyAffected = await write(conn, sql)
      const per: number[] = []
      for (const t of p.targets) per.push(await write(conn, t.sql))
      const shardedAffected = mergeAffectedRows(per)
      if (legacyAffected !== shardedAffected) return fail(`affected rows: legacy ${legacyAffected}, sharded ${shardedAffected}`)
      const want = bag((await read(conn, `SELECT * FROM ${qualified(config.legacy.database, config.legacy.table)}`)).rows)
      const got = await userShardContents(conn, config)
      if (want.length !== got.length || want.some((x, i) => x !== got[i])) {
        const missing = want.filter((x) => !got.includes(x))
        const extra = got.filter((x) => !want.includes(x))
        // UPDATE/DELETE ... LIMIT n without ORDER BY may pick any n matching rows, on legacy as on a shard
        const free = candidates === null ? null : new Set(candidates)
        const idOf = (row: string): string => row.split('\u0001')[0]!
        if (free === null || ![...missing, ...extra].every((r) => free.has(idOf(r)))) {
          return fail(`after the write the user shards differ from legacy: ${missing.length} legacy rows missing or changed, ${extra.length} rows extra or different`)
        }
      }
      return { sql, class: p.class, outcome: 'checked', targets: p.targets.length }
    } finally {
      await conn.query('ROLLBACK')
    }
  } catch (err) {
    return fail(`a statement failed: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
  }
}
