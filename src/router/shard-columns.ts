/**
 * The columns of a dimension's shard tables, read once per runtime from
 * information_schema: the whitelist every caller-supplied column name
 * (selected, filtered or sorted on) is checked against before any SQL is
 * built, with each column's sort kind and nullability. All shard tables of a
 * dimension share one definition (provisioning copies the legacy table), so
 * the first shard that answers describes them all.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import type { Dimension } from './shard-function.js'
import { sortKindOf, type SortKind } from './keyset.js'
import { readShard } from './shard-query.js'

export interface ShardColumn {
  readonly name: string
  readonly kind: SortKind
  readonly nullable: boolean
}

export type ShardColumns = ReadonlyMap<string, ShardColumn>

const cache = new WeakMap<Runtime, Map<Dimension, Promise<ShardColumns>>>()

/** A plain identifier, as the config requires for database and table names. */
export const PLAIN_IDENT_RE = /^[A-Za-z_][A-Za-z0-9_$]{0,63}$/

/**
 * The columns of `dimension`'s shard tables (cached per runtime; a failed read is not cached).
 * @throws ShardkitError `SHARD_FAILED` when no host of the dimension answers or the tables do not exist
 */
export function shardColumns(rt: Runtime, dimension: Dimension, timeoutMs: number): Promise<ShardColumns> {
  let byDim = cache.get(rt)
  if (!byDim) cache.set(rt, (byDim = new Map()))
  let p = byDim.get(dimension)
  if (!p) {
    p = describe(rt, dimension, timeoutMs)
    byDim.set(dimension, p)
    p.catch(() => byDim.delete(dimension))
  }
  return p
}

async function describe(rt: Runtime, dimension: Dimension, timeoutMs: number): Promise<ShardColumns> {
  const seen = new Set<string>()
  let lastErr: unknown
  for (const p of rt.config.dimensions[dimension].shards) {
    if (seen.has(p.host)) continue
    seen.add(p.host)
    try {
      const rows = await readShard({
        pool: rt.host(p.host),
        sql: 'SELECT COLUMN_NAME AS name, DATA_TYPE AS type, IS_NULLABLE AS nullable FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
        params: [p.database, p.table],
        timeoutMs,
      })
      if (rows.length === 0) {
        throw new ShardkitError('SHARD_FAILED', `${dimension} shard ${p.shard} table ${p.database}.${p.table} does not exist on host ${p.host}; run \`shardctl provision\``, { dimension, shard: p.shard, host: p.host })
      }
      const cols = new Map<string, ShardColumn>()
      for (const r of rows) {
        const name = String(r.name)
        cols.set(name, { name, kind: sortKindOf(String(r.type)), nullable: r.nullable === 'YES' })
      }
      return cols
    } catch (err) {
      if (err instanceof ShardkitError) throw err
      lastErr = err
    }
  }
  throw new ShardkitError('SHARD_FAILED', `could not read the ${dimension} shard tables' columns: no host of the dimension answered (tried ${[...seen].join(', ')})`, { dimension, hosts: [...seen] }, { cause: lastErr, retryable: true })
}

/**
 * Checks a caller-supplied column name: a plain identifier that the shard tables have.
 * @throws ShardkitError `USAGE` naming `argument`
 */
export function checkColumn(cols: ShardColumns, name: unknown, argument: string): ShardColumn {
  if (typeof name !== 'string' || !PLAIN_IDENT_RE.test(name)) {
    throw new ShardkitError('USAGE', `option "${argument}" must be a plain column name (letters, digits, _ or $), got ${JSON.stringify(String(name)).slice(0, 70)}`, { argument })
  }
  const col = cols.get(name)
  if (!col) {
    throw new ShardkitError('USAGE', `option "${argument}" names column "${name}", which the shard tables do not have (they have: ${[...cols.keys()].join(', ')})`, { argument, column: name })
  }
  return col
}
