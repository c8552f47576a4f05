/**
 * `provision`: creates the shard databases, the 240 shard tables, the control
 * tables and the per-primary tables. Idempotent: a second run creates nothing
 * and says so. A table that exists with another definition is reported as a
 * conflict and never altered or dropped.
 */
import pLimit from 'p-limit'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { CONTROL_TABLES, ORDER_DB_TABLES, PRIMARY_TABLES } from '../control/tables.js'
import { FENCE_TABLE } from '../cutover/fence.js'
import { DIMENSIONS } from '../router/shard-function.js'
import { expectedShape, needsMerchantIndex, shapeDifferences, shardTableDDL, type TableShape } from './shard-ddl.js'
import { dialectOf } from '../runtime/dialect.js'

export type ProvisionTarget = 'database' | 'shard-table' | 'control-table' | 'primary-table' | 'order-db-table'

export interface ProvisionItem {
  readonly kind: ProvisionTarget
  /** Host name from the config, or `legacy` / `control` for those servers. */
  readonly host: string
  readonly database: string
  readonly table?: string
}

export interface ProvisionConflict extends ProvisionItem {
  readonly differences: readonly string[]
}

export interface ProvisionReport {
  readonly dryRun: boolean
  /** What was created (or, with dryRun, would be). */
  readonly created: readonly ProvisionItem[]
  /** How many of each kind already existed as expected. */
  readonly existing: Readonly<Record<ProvisionTarget, number>>
  /** Tables that exist with another definition: reported, never altered. */
  readonly conflicts: readonly ProvisionConflict[]
}

export interface ProvisionOptions {
  readonly dryRun?: boolean
  /** Parallel CREATE TABLE statements per server (default 4). */
  readonly concurrency?: number
  readonly signal?: AbortSignal
}

interface Server {
  readonly name: string
  readonly pool: Pool
}

async function tableShapes(pool: Pool, databases: readonly string[]): Promise<Map<string, TableShape>> {
  const shapes = new Map<string, { columns: TableShape['columns'][number][]; indexes: Map<string, { unique: boolean; columns: string[] }> }>()
  if (databases.length === 0) return new Map()
  const get = (db: string, t: string) => {
    const k = `${db}.${t}`
    let s = shapes.get(k)
    if (!s) shapes.set(k, (s = { columns: [], indexes: new Map() }))
    return s
  }
  const [cols] = await pool.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, COLUMN_NAME AS name, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS def
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    [databases],
  )
  for (const c of cols) get(c.db, c.t).columns.push({ name: c.name, type: String(c.type).toLowerCase(), nullable: c.nullable === 'YES', defaultValue: normaliseDefault(c.def) })
  const [idx] = await pool.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, INDEX_NAME AS name, NON_UNIQUE AS nonUnique, COLUMN_NAME AS col
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    [databases],
  )
  for (const i of idx) {
    const s = get(i.db, i.t)
    let e = s.indexes.get(i.name)
    if (!e) s.indexes.set(i.name, (e = { unique: String(i.nonUnique) === '0', columns: [] }))
    e.columns.push(i.col)
  }
  const out = new Map<string, TableShape>()
  for (const [k, s] of shapes) out.set(k, { columns: s.columns, indexes: [...s.indexes].map(([name, v]) => ({ name, ...v })) })
  return out
}

/** MariaDB reports string defaults quoted ('CNY') and MySQL unquoted: compare them one way. */
function normaliseDefault(d: unknown): string | null {
  if (d === null || d === undefined || d === 'NULL') return null
  const s = String(d)
  return s.startsWith("'") && s.endsWith("'") ? s.slice(1, -1) : s
}

async function existingDatabases(pool: Pool, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set()
  const [rows] = await pool.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?)', [names])
  return new Set(rows.map((r) => r.name as string))
}

/**
 * Creates what is missing. Reads the legacy table's definition first.
 * @throws ShardkitError `PRECONDITION_FAILED` when the legacy table does not exist
 */
export async function provision(rt: Runtime, opts: ProvisionOptions = {}): Promise<ProvisionReport> {
  const { config } = rt
  const dryRun = opts.dryRun ?? false
  const created: ProvisionItem[] = []
  const conflicts: ProvisionConflict[] = []
  const existing: Record<ProvisionTarget, number> = { database: 0, 'shard-table': 0, 'control-table': 0, 'primary-table': 0, 'order-db-table': 0 }
  const { legacy } = config

  const legacyShapes = await tableShapes(rt.legacy(), [legacy.database])
  const legacyShape = legacyShapes.get(`${legacy.database}.${legacy.table}`)
  if (!legacyShape) {
    throw new ShardkitError('PRECONDITION_FAILED', `the legacy table ${legacy.database}.${legacy.table} does not exist; check legacy.database and legacy.table in the config`, {
      database: legacy.database,
      table: legacy.table,
    })
  }
  const [[showRow]] = await rt.legacy().query<RowDataPacket[]>(`SHOW CREATE TABLE ${qualified(legacy.database, legacy.table)}`)
  const showCreate = String(showRow!['Create Table'])
  const addMerchantIndex = needsMerchantIndex(legacyShape, legacy.merchantColumn)

  // Group everything by server so each server gets batched reads and bounded parallel DDL.
  const servers = new Map<string, Server>()
  const server = (name: string, pool: () => Pool) => {
    let s = servers.get(name)
    if (!s) servers.set(name, (s = { name, pool: pool() }))
    return s
  }
  type Work = { server: Server; database: string; table?: string; kind: ProvisionTarget; ddl?: string; expected?: TableShape }
  const work: Work[] = []
  // Each host's dialect, so a collation it lacks is translated (a host that does not answer fails below, as before).
  const dialects = new Map(await Promise.all(Object.keys(config.hosts).map(async (h) => [h, await dialectOf(rt.host(h)).catch(() => undefined)] as const)))
  for (const dim of DIMENSIONS) {
    const shapeOpts = { dimension: dim, addMerchantIndex, merchantColumn: legacy.merchantColumn, primaryKey: legacy.primaryKey }
    for (const p of config.dimensions[dim].shards) {
      const s = server(p.host, () => rt.host(p.host))
      const target = dialects.get(p.host)
      work.push({ server: s, database: p.database, table: p.table, kind: 'shard-table', ddl: shardTableDDL(showCreate, p, { ...shapeOpts, ...(target ? { target } : {}) }), expected: expectedShape(legacyShape, shapeOpts) })
    }
  }
  const control = server('control', () => rt.controlServer())
  for (const t of CONTROL_TABLES) work.push({ server: control, database: config.control.database, table: t.name, kind: 'control-table', ddl: t.ddl(config.control.database) })
  const primaries = new Map<string, { server: Server; database: string }>()
  primaries.set('legacy', { server: server('legacy', () => rt.legacy()), database: legacy.database })
  for (const p of config.dimensions.user.shards) primaries.set(`${p.host}/${p.database}`, { server: server(p.host, () => rt.host(p.host)), database: p.database })
  for (const { server: s, database } of primaries.values()) {
    for (const t of PRIMARY_TABLES) work.push({ server: s, database, table: t.name, kind: 'primary-table', ddl: t.ddl(database) })
  }
  // Every database holding order copies gets the tombstones its copies check (src/dualwrite/tombstones.ts).
  const orderDbs = new Map<string, { server: Server; database: string }>([['legacy', primaries.get('legacy')!]])
  for (const dim of DIMENSIONS) for (const p of config.dimensions[dim].shards) orderDbs.set(`${p.host}/${p.database}`, { server: server(p.host, () => rt.host(p.host)), database: p.database })
  for (const { server: s, database } of orderDbs.values()) {
    for (const t of ORDER_DB_TABLES) work.push({ server: s, database, table: t.name, kind: 'order-db-table', ddl: t.ddl(database) })
  }

  for (const s of servers.values()) {
    opts.signal?.throwIfAborted()
    const mine = work.filter((w) => w.server === s)
    if (mine.length === 0) continue
    const dbs = [...new Set(mine.map((w) => w.database))]
    const have = await existingDatabases(s.pool, dbs)
    for (const db of dbs) {
      if (have.has(db)) existing.database++
      else {
        created.push({ kind: 'database', host: s.name, database: db })
        if (!dryRun) await s.pool.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(db)} DEFAULT CHARACTER SET utf8mb4`)
      }
    }
    const shapes = await tableShapes(s.pool, dbs.filter((d) => have.has(d)))
    const limit = pLimit(opts.concurrency ?? 4)
    await Promise.all(
      mine.map((w) =>
        limit(async () => {
          opts.signal?.throwIfAborted()
          const actual = shapes.get(`${w.database}.${w.table}`)
          const item: ProvisionItem = { kind: w.kind, host: s.name, database: w.database, table: w.table }
          if (actual) {
            const diffs = w.expected ? shapeDifferences(w.expected, actual) : []
            if (diffs.length > 0) conflicts.push({ ...item, differences: diffs })
            else existing[w.kind]++
            return
          }
          created.push(item)
          if (!dryRun) await s.pool.query(w.ddl!)
        }),
      ),
    )
  }
  if (!dryRun) {
    // Every fence row exists from the start, open at version 0 (what an instance at legacy v0 passes):
    // a first switch that had to insert them waited behind the gap locks of every write in flight, and
    // under steady writes those never all end at once. A row that exists is left as it is.
    for (const { server: s, database } of primaries.values()) {
      await s.pool.query(`INSERT IGNORE INTO ${qualified(database, FENCE_TABLE)} (id, stage_version, state) VALUES (1, 0, 'open')`)
    }
  }
  const order = (i: ProvisionItem) => `${i.kind}/${i.host}/${i.database}/${i.table ?? ''}`
  created.sort((a, b) => order(a).localeCompare(order(b)))
  conflicts.sort((a, b) => order(a).localeCompare(order(b)))
  return { dryRun, created, existing, conflicts }
}
