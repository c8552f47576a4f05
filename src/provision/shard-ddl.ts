/**
 * Turns the legacy table's own definition into shard-table DDL (pure).
 * Shard tables keep the legacy columns, keys and charset; the merchant
 * dimension gets an index on (merchant column, primary key) when the legacy
 * table has no index that starts with the merchant column. Foreign keys are
 * dropped (they cannot span shards; `shardctl sql lint --schema` reports them)
 * and so is the AUTO_INCREMENT counter (new ids come from the generator).
 * For a target server of another version, collations it lacks are translated
 * ({@link translateDDL}); stored bytes never change.
 */
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { collationFor, type Dialect } from '../runtime/dialect.js'
import type { Dimension } from '../router/shard-function.js'

/** A column as information_schema describes it; what provisioning compares. */
export interface ColumnShape {
  readonly name: string
  readonly type: string
  readonly nullable: boolean
  readonly defaultValue: string | null
}

/** An index as information_schema describes it. */
export interface IndexShape {
  readonly name: string
  readonly unique: boolean
  readonly columns: readonly string[]
}

export interface TableShape {
  readonly columns: readonly ColumnShape[]
  readonly indexes: readonly IndexShape[]
}

/** The name of the index provisioning adds to merchant-dimension tables when needed. */
export const MERCHANT_INDEX = 'idx_shardkit_merchant'

/** True when the merchant dimension needs the extra (merchant column, primary key) index. */
export function needsMerchantIndex(legacy: TableShape, merchantColumn: string): boolean {
  return !legacy.indexes.some((i) => i.columns[0]?.toLowerCase() === merchantColumn.toLowerCase())
}

/**
 * `CREATE TABLE IF NOT EXISTS db.table (...)` from the legacy `SHOW CREATE TABLE` text.
 * @param showCreate the second column of `SHOW CREATE TABLE legacy`
 */
export function shardTableDDL(
  showCreate: string,
  target: { database: string; table: string },
  opts: { dimension: Dimension; addMerchantIndex: boolean; merchantColumn: string; primaryKey: string; target?: Dialect },
): string {
  const lines = (opts.target ? translateDDL(showCreate, opts.target) : showCreate).split('\n')
  const head = lines[0] ?? ''
  if (!/^CREATE TABLE /i.test(head)) throw new Error('unexpected SHOW CREATE TABLE output: it does not start with CREATE TABLE')
  const body = lines.slice(1, -1).filter((l) => !/^\s*CONSTRAINT .* FOREIGN KEY /i.test(l))
  if (body.length > 0) body[body.length - 1] = body[body.length - 1]!.replace(/,\s*$/, '')
  if (opts.dimension === 'merchant' && opts.addMerchantIndex) {
    body[body.length - 1] += ','
    body.push(`  KEY ${quoteIdent(MERCHANT_INDEX)} (${quoteIdent(opts.merchantColumn)},${quoteIdent(opts.primaryKey)})`)
  }
  const tail = (lines[lines.length - 1] ?? ')').replace(/\s+AUTO_INCREMENT=\d+/i, '')
  return [`CREATE TABLE IF NOT EXISTS ${qualified(target.database, target.table)} (`, ...body, tail].join('\n')
}

/**
 * `SHOW CREATE TABLE` text made creatable on `target`: each collation the
 * target lacks becomes its equivalent (`utf8mb4_0900_ai_ci` is
 * `utf8mb4_uca1400_ai_ci` on MariaDB 10.10+, and back), and MySQL's
 * version comments (`/*!80016 DEFAULT ENCRYPTION='N' *\/`), which MariaDB
 * would execute because its version numbers are higher, are dropped there.
 */
export function translateDDL(showCreate: string, target: Dialect): string {
  let out = showCreate.replace(/\b(COLLATE[= ])([A-Za-z0-9_]+)/g, (_m, kw: string, c: string) => `${kw}${collationFor(target, c)}`)
  if (target.name === 'mariadb') out = out.replace(/\s*\/\*!80\d{3} [^*]*\*\//g, '')
  return out
}

/** The shape a shard table must have: the legacy shape, plus the merchant index where it is added. */
export function expectedShape(legacy: TableShape, opts: { dimension: Dimension; addMerchantIndex: boolean; merchantColumn: string; primaryKey: string }): TableShape {
  const indexes = [...legacy.indexes]
  if (opts.dimension === 'merchant' && opts.addMerchantIndex) indexes.push({ name: MERCHANT_INDEX, unique: false, columns: [opts.merchantColumn, opts.primaryKey] })
  return { columns: legacy.columns, indexes }
}

/** The differences between an existing table and the expected shape, as short sentences (identifiers only). */
export function shapeDifferences(expected: TableShape, actual: TableShape): string[] {
  const out: string[] = []
  const key = (c: ColumnShape) => `${c.type}${c.nullable ? ' NULL' : ' NOT NULL'}${c.defaultValue === null ? '' : ' DEFAULT ' + c.defaultValue}`
  const act = new Map(actual.columns.map((c) => [c.name.toLowerCase(), c]))
  const exp = new Map(expected.columns.map((c) => [c.name.toLowerCase(), c]))
  for (const c of expected.columns) {
    const a = act.get(c.name.toLowerCase())
    if (!a) out.push(`column ${c.name} is missing`)
    else if (key(a) !== key(c)) out.push(`column ${c.name} is ${key(a)}, expected ${key(c)}`)
  }
  for (const a of actual.columns) if (!exp.has(a.name.toLowerCase())) out.push(`column ${a.name} is not in the legacy table`)
  const idx = (i: IndexShape) => `${i.unique ? 'UNIQUE ' : ''}(${i.columns.join(',')})`
  const actIdx = new Map(actual.indexes.map((i) => [i.name.toLowerCase(), i]))
  const expIdx = new Map(expected.indexes.map((i) => [i.name.toLowerCase(), i]))
  for (const i of expected.indexes) {
    const a = actIdx.get(i.name.toLowerCase())
    if (!a) out.push(`index ${i.name} is missing`)
    else if (idx(a) !== idx(i)) out.push(`index ${i.name} is ${idx(a)}, expected ${idx(i)}`)
  }
  for (const a of actual.indexes) if (!expIdx.has(a.name.toLowerCase())) out.push(`index ${a.name} is not expected`)
  return out
}
