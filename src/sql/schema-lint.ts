/**
 * Schema lint: what the legacy table's definition holds that the sharded
 * layout cannot keep, and what the migration needs of it: an unsigned
 * integer `version` column (dual writes refuse to start without one; the
 * finding carries the exact ALTER TABLE for the server's dialect) and key
 * columns of a type the router can route. `readSchemaFacts` reads the facts
 * over the legacy connection (information_schema, bound parameters);
 * `lintSchema` is pure.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import type { SqlLayout } from './classify.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { addColumnAlgorithm, describeDialect, dialectOf, instantAddColumn, type Dialect } from '../runtime/dialect.js'
import { MAX_KEY_DIGITS } from '../router/shard-function.js'

/** The column dual writes increase on every write (src/dualwrite/row-sql.ts VERSION_COLUMN). */
const VERSION = 'version'

/** One column as information_schema describes it. */
export interface ColumnFact {
  readonly name: string
  /** `DATA_TYPE`, lower case. */
  readonly dataType: string
  /** `COLUMN_TYPE`, e.g. `bigint(20) unsigned`. */
  readonly columnType: string
  readonly nullable: boolean
  readonly precision: number | null
  readonly scale: number | null
}

/** What the server says about the legacy table. */
export interface SchemaFacts {
  readonly table: string
  /** The legacy database (for the ALTER statements findings print); absent in older callers. */
  readonly database?: string
  /** The table's columns; absent: the column checks are skipped. */
  readonly columns?: readonly ColumnFact[]
  /** The legacy server's dialect (which ALTER is instant). */
  readonly dialect?: Dialect
  readonly autoIncrementColumn: string | null
  /** Unique keys other than PRIMARY: name and columns in order. */
  readonly uniqueKeys: readonly { name: string; columns: readonly string[] }[]
  readonly foreignKeys: readonly { name: string; table: string; referencedTable: string }[]
  readonly triggers: readonly string[]
  readonly views: readonly string[]
}

/** One thing the sharded layout cannot keep. */
export interface SchemaFinding {
  readonly kind: 'auto-increment' | 'unique-key' | 'foreign-key' | 'trigger' | 'view' | 'version-column' | 'key-column'
  readonly object: string
  readonly message: string
  /** The exact statement that fixes it, when there is one. */
  readonly fix?: string
}

/** Reads the legacy table's definition. @throws mysql2 errors (the CLI maps them) */
export async function readSchemaFacts(pool: Pool, database: string, table: string): Promise<SchemaFacts> {
  const [cols] = await pool.query<RowDataPacket[]>('SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA LIKE ?', [database, table, '%auto_increment%'])
  const [stats] = await pool.query<RowDataPacket[]>('SELECT INDEX_NAME AS n, COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> ? ORDER BY INDEX_NAME, SEQ_IN_INDEX', [database, table, 'PRIMARY'])
  const [fks] = await pool.query<RowDataPacket[]>('SELECT CONSTRAINT_NAME AS n, TABLE_NAME AS t, REFERENCED_TABLE_NAME AS r FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)', [database, table, database, table])
  const [trg] = await pool.query<RowDataPacket[]>('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [database, table])
  const [views] = await pool.query<RowDataPacket[]>('SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n, VIEW_DEFINITION AS d FROM information_schema.VIEWS')
  const [colRows] = await pool.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS c, DATA_TYPE AS t, COLUMN_TYPE AS ct, IS_NULLABLE AS n, NUMERIC_PRECISION AS p, NUMERIC_SCALE AS s FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [database, table],
  )
  // SHOW CREATE TABLE is the authority for the definition; it also fails loudly when the table is missing.
  await pool.query(`SHOW CREATE TABLE ${qualified(database, table)}`)
  const dialect = await dialectOf(pool)
  const uniq = new Map<string, string[]>()
  for (const r of stats) uniq.set(String(r.n), [...(uniq.get(String(r.n)) ?? []), String(r.c)])
  const ref = '`' + database.toLowerCase() + '`.`' + table.toLowerCase() + '`'
  return {
    table,
    database,
    dialect,
    columns: colRows.map((r) => ({
      name: String(r.c),
      dataType: String(r.t).toLowerCase(),
      columnType: String(r.ct).toLowerCase(),
      nullable: r.n === 'YES',
      precision: r.p === null ? null : Number(r.p),
      scale: r.s === null ? null : Number(r.s),
    })),
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
  if (facts.columns) out.push(...columnFindings(facts as SchemaFacts & { columns: readonly ColumnFact[] }, layout))
  return out
}

const INTEGER = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint'])

/** True for a column every value of which the router can route (an integer type, or DECIMAL(p,0) up to 20 digits). */
export function routableKeyType(c: ColumnFact): boolean {
  if (INTEGER.has(c.dataType)) return true
  return (c.dataType === 'decimal' || c.dataType === 'numeric') && c.scale === 0 && (c.precision ?? 99) <= MAX_KEY_DIGITS
}

/** The ALTER TABLE that gives the legacy table the `version` column dual writes need. */
export function versionColumnFix(facts: Pick<SchemaFacts, 'database' | 'table' | 'dialect'>, existing: boolean): string {
  const t = facts.database ? qualified(facts.database, facts.table) : quoteIdent(facts.table)
  const col = `${quoteIdent(VERSION)} INT UNSIGNED NOT NULL DEFAULT 1`
  if (existing) return `ALTER TABLE ${t} MODIFY COLUMN ${col}`
  return `ALTER TABLE ${t} ADD COLUMN ${col}${facts.dialect ? addColumnAlgorithm(facts.dialect) : ''}`
}

/** How long the ADD COLUMN takes on the server, in words. */
function instantNote(d: Dialect | undefined): string {
  const which = 'instant (metadata only) on MariaDB 10.3.2+ and MySQL 8.0.12+; MySQL 5.7 rebuilds the table online (ALGORITHM=INPLACE, LOCK=NONE)'
  if (!d) return `It is ${which}.`
  return instantAddColumn(d) ? `On ${describeDialect(d)} it is instant (metadata only; ${which}).` : `On ${describeDialect(d)} it is not instant: the table is rebuilt online (${which}).`
}

/** The version column and key column findings (pure). */
export function columnFindings(facts: SchemaFacts & { columns: readonly ColumnFact[] }, layout: Pick<SqlLayout, 'userColumn' | 'merchantColumn'>): SchemaFinding[] {
  const out: SchemaFinding[] = []
  const by = new Map(facts.columns.map((c) => [c.name.toLowerCase(), c]))
  const v = by.get(VERSION)
  const object = `${facts.table}.${VERSION}`
  if (!v) {
    const fix = versionColumnFix(facts, false)
    out.push({ kind: 'version-column', object, fix, message: `dual writes need an INT UNSIGNED \`version\` column (every write through the store increases it; backfill, replays and repair compare it), and the store refuses to start without one: run ${fix}. ${instantNote(facts.dialect)}` })
  } else if (!INTEGER.has(v.dataType) || !v.columnType.includes('unsigned') || v.nullable) {
    const fix = versionColumnFix(facts, true)
    out.push({ kind: 'version-column', object, fix, message: `the \`version\` column is ${v.columnType}${v.nullable ? ' NULL' : ''}; dual writes need an unsigned NOT NULL integer: run ${fix} (this copies the table)` })
  }
  for (const name of [layout.userColumn, layout.merchantColumn]) {
    const c = by.get(name.toLowerCase())
    if (!c) out.push({ kind: 'key-column', object: `${facts.table}.${name}`, message: `the table has no column ${name}; check legacy.userColumn and legacy.merchantColumn in the config` })
    else if (!routableKeyType(c)) {
      out.push({ kind: 'key-column', object: `${facts.table}.${name}`, message: `${name} is ${c.columnType}: the router routes integer keys (up to BIGINT UNSIGNED, or DECIMAL(p,0) with p up to ${MAX_KEY_DIGITS}) by key mod 120; convert the column or route by another one` })
    }
  }
  return out
}

/** Notes (not findings) on key columns: which rows no key routes (reported by backfill and verify). */
export function keyColumnNotes(facts: SchemaFacts & { columns: readonly ColumnFact[] }, layout: Pick<SqlLayout, 'userColumn' | 'merchantColumn'>): string[] {
  const out: string[] = []
  for (const name of [layout.userColumn, layout.merchantColumn]) {
    const c = facts.columns.find((x) => x.name.toLowerCase() === name.toLowerCase())
    if (!c || !routableKeyType(c)) continue
    const cases = [...(c.nullable ? ['NULL'] : []), ...(c.columnType.includes('unsigned') ? [] : ['negative'])]
    if (cases.length > 0) out.push(`${name} (${c.columnType}${c.nullable ? ' NULL' : ''}) may hold ${cases.join(' or ')} values, which no shard takes: backfill copies such rows nowhere and reports them by key, and verify lists them as "unroutable" until their key is fixed`)
  }
  return out
}
