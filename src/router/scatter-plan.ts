/**
 * The SQL pieces of a scatter query, built from caller input: filter
 * conditions (values bound, columns checked against the shard tables) and the
 * total order (the primary key appended when absent). Every identifier is a
 * column the shard tables have, quoted; every value is a parameter.
 */
import { ShardkitError } from '../errors.js'
import { quoteIdent } from '../runtime/mysql.js'
import type { SortColumn } from './keyset.js'
import { checkColumn, type ShardColumns } from './shard-columns.js'

export type FilterOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in' | 'is null' | 'is not null'
/** One condition; conditions are ANDed. `in`/`not in` take a non-empty array; `is null`/`is not null` no value. */
export interface ScatterFilter {
  readonly column: string
  readonly op: FilterOp
  readonly value?: unknown
}
export interface ScatterOrder {
  readonly column: string
  readonly direction?: 'asc' | 'desc'
}

const OPS = new Set<FilterOp>(['=', '!=', '<', '<=', '>', '>=', 'in', 'not in', 'is null', 'is not null'])

/** `USAGE` naming the option. */
export function usage(argument: string, message: string): ShardkitError {
  return new ShardkitError('USAGE', `option "${argument}" ${message}`, { argument })
}

function isScalar(v: unknown): boolean {
  return v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v) || v instanceof Date
}

/** `WHERE` conditions (ANDed) and their parameters. @throws ShardkitError `USAGE` naming `where[i]...` */
export function buildFilters(cols: ShardColumns, where: readonly ScatterFilter[]): { sql: string[]; params: unknown[] } {
  const sql: string[] = []
  const params: unknown[] = []
  where.forEach((f, i) => {
    const arg = `where[${i}]`
    const col = quoteIdent(checkColumn(cols, f?.column, `${arg}.column`).name)
    if (!OPS.has(f.op)) throw usage(`${arg}.op`, `must be one of ${[...OPS].join(', ')}`)
    if (f.op === 'is null' || f.op === 'is not null') {
      sql.push(`${col} ${f.op === 'is null' ? 'IS NULL' : 'IS NOT NULL'}`)
    } else if (f.op === 'in' || f.op === 'not in') {
      if (!Array.isArray(f.value) || f.value.length === 0 || f.value.length > 1000 || !f.value.every((v) => isScalar(v) && v !== null)) {
        throw usage(`${arg}.value`, 'must be an array of 1 to 1000 non-null values for "in" / "not in"')
      }
      sql.push(`${col} ${f.op === 'in' ? 'IN' : 'NOT IN'} (${f.value.map(() => '?').join(', ')})`)
      params.push(...f.value)
    } else {
      if (!isScalar(f.value) || f.value === null) throw usage(`${arg}.value`, `must be a non-null string, number, bigint, boolean or Date for "${f.op}" (use "is null" for NULL)`)
      sql.push(`${col} ${f.op === '!=' ? '<>' : f.op} ?`)
      params.push(f.value)
    }
  })
  return { sql, params }
}

/** The validated total order. @throws ShardkitError `USAGE` naming `orderBy[i]...` */
export function buildOrder(cols: ShardColumns, orderBy: readonly ScatterOrder[], primaryKey: string): SortColumn[] {
  const order: SortColumn[] = []
  const seen = new Set<string>()
  const add = (o: ScatterOrder, arg: string) => {
    const col = checkColumn(cols, o?.column, `${arg}.column`)
    if (seen.has(col.name)) throw usage(`${arg}.column`, `names column "${col.name}" twice`)
    const direction = o.direction ?? 'asc'
    if (direction !== 'asc' && direction !== 'desc') throw usage(`${arg}.direction`, 'must be "asc" or "desc"')
    if (col.kind === 'other') throw usage(`${arg}.column`, `names column "${col.name}", which cannot be merged across shards in the server's order; order by integer, decimal, double or date/time columns`)
    if (col.kind === 'float32') {
      throw usage(
        `${arg}.column`,
        `names column "${col.name}", a FLOAT, which cannot be paginated: the server prints a FLOAT to about 6 digits, so the cursor would not name the row exactly and pages would repeat rows; change the column to DOUBLE (ALTER TABLE ... MODIFY \`${col.name}\` DOUBLE NOT NULL keeps every value exactly) or DECIMAL, or order by another column and filter on this one`,
      )
    }
    if (col.nullable) throw usage(`${arg}.column`, `names column "${col.name}", which is nullable; keyset pagination needs NOT NULL order columns`)
    seen.add(col.name)
    order.push({ column: col.name, direction, kind: col.kind })
  }
  orderBy.forEach((o, i) => add(o, `orderBy[${i}]`))
  // The primary key is unique across shards (one order, one row per dimension), so it makes the order total.
  if (!seen.has(primaryKey)) add({ column: primaryKey, direction: 'asc' }, 'orderBy (primary key)')
  return order
}

