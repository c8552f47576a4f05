/**
 * Schema lint: what the legacy table's definition holds that the sharded
 * layout cannot keep. `readSchemaFacts` reads the facts over the legacy
 * connection (information_schema, bound parameters); `lintSchema` is pure.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import type { SqlLayout } from './classify.js'
import { qualified } from '../runtime/mysql.js'

/** What the server says about the legacy table. */
export interface SchemaFacts {
  readonly table: string
  readonly autoIncrementColumn: string | null
  /** Unique keys other than PRIMARY: name and columns in order. */
  readonly uniqueKeys: readonly { name: string; columns: readonly string[] }[]
  readonly foreignKeys: readonly { name: string; table: string; referencedTable: string }[]
  readonly triggers: readonly string[]
  readonly views: readonly string[]
}

/** One thing the sharded layout cannot keep. */
export interface SchemaFinding {
  readonly kind: 'auto-increment' | 'unique-key' | 'foreign-key' | 'trigger' | 'view'
  readonly object: string
  readonly message: string
}

/** Reads the legacy table's definition. @throws mysql2 errors (the CLI maps them) */
export async function readSchemaFacts(pool: Pool, database: string, table: string): Promise<SchemaFacts> {
  const [cols] = await pool.query<RowDataPacket[]>('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA LIKE ?', [database, table, '%auto_increment%'])
  const [stats] = await pool.query<RowDataPacket[]>('SELECT INDEX_NAME AS n, COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> ? ORDER BY INDEX_NAME, SEQ_IN_INDEX', [database, table, 'PRIMARY'])
  const [fks] = await pool.query<RowDataPacket[]>('SELECT CONSTRAINT_NAME AS n, TABLE_NAME AS t, REFERENCED_TABLE_NAME AS r FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)', [database, table, database, table])
  const [trg] = await pool.query<RowDataPacket[]>('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [database, table])
  const [views] = await pool.query<RowDataPacket[]>('SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n, VIEW_DEFINITION AS d FROM information_schema.VIEWS')
  // SHOW CREATE TABLE is the authority for the definition; it also fails loudly when the table is missing.
  await pool.query(`SHOW CREATE TABLE ${qualified(database, table)}`)
  const uniq = new Map<string, string[]>()
  for (const r of stats) uniq.set(String(r.n), [...(uniq.get(String(r.n)) ?? []), String(r.c)])
  const ref = '`' + database.toLowerCase() + '`.`' + table.toLowerCase() + '`'
  return {
    table,
    autoIncrementColumn: cols.length > 0 ? String(cols[0]!.c) : null,
    uniqueKeys: [...uniq].map(([name, columns]) => ({ name, columns })),
    foreignKeys: fks.map((r) => ({ name: String(r.n), table: String(r.t), referencedTable: String(r.r) })),
    triggers: trg.map((r) => String(r.n)),
    // the server stores view definitions fully qualified and quoted, so the qualified name is an exact token
    views: views.filter((v) => String(v.d ?? '').toLowerCase().includes(ref)).map((v) => `${v.s}.${v.n}`),
  }
}

/** The findings for a table's facts (pure). */
export function lintSchema(facts: SchemaFacts, layout: SqlLayout): SchemaFinding[] {
  const out: SchemaFinding[] = []
  if (facts.autoIncrementColumn) out.push({ kind: 'auto-increment', object: `${facts.table}.${facts.autoIncrementColumn}`, message: 'AUTO_INCREMENT cannot number rows across 120 shards: new order ids come from the id generator; drop AUTO_INCREMENT from the shard tables' })
  for (const k of facts.uniqueKeys) {
    const hasUser = k.columns.some((c) => c.toLowerCase() === layout.userColumn.toLowerCase())
    if (!hasUser) out.push({ kind: 'unique-key', object: k.name, message: `unique key (${k.columns.join(', ')}) lacks ${layout.userColumn}: not enforceable across shards; make it (${layout.userColumn}, ${k.columns.join(', ')}) or enforce it in a lookup table keyed by (${k.columns.join(', ')})` })
  }
  for (const f of facts.foreignKeys) out.push({ kind: 'foreign-key', object: f.name, message: `foreign key ${f.table} -> ${f.referencedTable} cannot hold across databases: check the reference in the application` })
  for (const t of facts.triggers) out.push({ kind: 'trigger', object: t, message: 'triggers run on the legacy table only and bypass dual writes: move the logic into the application or the outbox' })
  for (const v of facts.views) out.push({ kind: 'view', object: v, message: 'a view over the legacy table keeps reading legacy after the cutover: replace it with a routed query' })
  return out
}
