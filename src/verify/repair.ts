/**
 * Repair: makes the copies of the keys in a verify report equal to the
 * source of truth for the current stage (legacy until writes move; the user
 * dimension from `write-shards` on), like pt-table-sync but across shards.
 *
 * For each key the source row is read (under a shared row lock when
 * executing, so no dual write can change it meanwhile) and each copy is made
 * to match: an idempotent upsert of the full row into the table its key
 * routes to, and a delete from every other table the report saw it in; when
 * the source has no row, the copies are deleted. Every statement can be run
 * twice with the same result. Printing (the default) reads without locks and
 * changes nothing.
 *
 * The copies a dual write is still replaying hold the same version as the
 * source row, so a late replay rewrites the same row.
 */
import { format, type RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { LOGICAL_SHARDS, shardOfKey, type Dimension } from '../router/shard-function.js'
import { assertIdSyntax, compareIds, shardFieldUnchecked } from '../idgen/layout.js'
import { readLookup } from '../dualwrite/lookup.js'
import { legacyLocation, locationKey, type Location } from '../dualwrite/placement.js'
import type { StageState } from '../cutover/stages.js'
import { shardOfValue, type Difference, type Pair } from './compare.js'
import { readColumnInfo } from './row-hash.js'
import { exactReads, kindOfType, selectListSql, type ReadKinds } from '../dualwrite/column-kinds.js'

export type SourceOfTruth = 'legacy' | 'user'

/** The source of truth at a stage, and the copies repair may write. */
export function repairTargets(stage: StageState['stage']): { source: SourceOfTruth; targets: Array<'legacy' | Dimension> } {
  if (stage === 'write-shards') return { source: 'user', targets: ['merchant', 'legacy'] }
  if (stage === 'shards') return { source: 'user', targets: ['merchant'] }
  return { source: 'legacy', targets: ['user', 'merchant'] }
}

/** One idempotent statement. `sql` has placeholders; `params` are bound when executed. */
export interface RepairStatement {
  readonly key: string
  readonly target: 'legacy' | Dimension
  readonly shard?: number
  readonly host: string
  readonly action: 'upsert' | 'delete'
  readonly sql: string
  readonly params: readonly unknown[]
}

/** The statement as text, values inlined: for people to read, never executed. */
export function printable(s: RepairStatement): string {
  return format(s.sql, s.params as Parameters<typeof format>[1]) + ';'
}

const PAIRS: readonly Pair[] = ['legacy-user', 'legacy-merchant', 'user-merchant']
const KINDS = ['missing', 'extra', 'different', 'misplaced', 'bad-shard-field', 'unroutable']

/**
 * Reads the differences of a verify report (`verify --report <file>`).
 * @throws ShardkitError `USAGE` naming the entry and field that is wrong
 */
export function parseReport(text: string, file: string): { differences: Difference[]; overflow: number } {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new ShardkitError('USAGE', `${file} is not JSON; pass the file written by \`shardctl verify --report <file>\``, { argument: '--report' })
  }
  const o = raw as { differences?: unknown; overflow?: unknown }
  if (typeof o !== 'object' || o === null || !Array.isArray(o.differences)) {
    throw new ShardkitError('USAGE', `${file} has no "differences" list; pass the file written by \`shardctl verify --report <file>\``, { argument: '--report' })
  }
  const differences = o.differences.map((d: unknown, i: number): Difference => {
    const e = d as Record<string, unknown>
    const bad = (field: string, want: string) => new ShardkitError('USAGE', `${file}: differences[${i}].${field} must be ${want}`, { argument: '--report', field: `differences[${i}].${field}` })
    if (typeof e !== 'object' || e === null) throw bad('', 'an object')
    if (typeof e.key !== 'string') throw bad('key', 'a decimal id string')
    try {
      assertIdSyntax(e.key)
    } catch {
      throw bad('key', 'a decimal id string')
    }
    if (!PAIRS.includes(e.pair as Pair)) throw bad('pair', PAIRS.join(', '))
    if (!KINDS.includes(e.kind as string)) throw bad('kind', KINDS.join(', '))
    if (e.shard !== undefined && (!Number.isInteger(e.shard) || (e.shard as number) < 0 || (e.shard as number) >= LOGICAL_SHARDS)) throw bad('shard', `a shard from 0 to ${LOGICAL_SHARDS - 1}`)
    return { pair: e.pair as Pair, kind: e.kind as Difference['kind'], key: e.key, ...(e.shard === undefined ? {} : { shard: e.shard as number }) }
  })
  return { differences, overflow: typeof o.overflow === 'number' ? o.overflow : 0 }
}

/** Builds the statements of one key, from the source row (undefined: the source has none). */
export class RepairPlanner {
  private constructor(
    private readonly rt: Runtime,
    private readonly columns: string[],
    readonly source: SourceOfTruth,
    readonly targets: ReadonlyArray<'legacy' | Dimension>,
    /** FLOAT and GEOMETRY columns, read through exact expressions (src/dualwrite/column-kinds.ts). */
    private readonly kinds: ReadKinds = {},
  ) {}

  static async open(rt: Runtime, stage: StageState['stage']): Promise<RepairPlanner> {
    const cfg = rt.config
    const cols = await readColumnInfo(rt.legacy(), cfg.legacy.database, cfg.legacy.table)
    const { source, targets } = repairTargets(stage)
    return new RepairPlanner(rt, cols.map((c) => c.name), source, targets, exactReads(Object.fromEntries(cols.map((c) => [c.name, kindOfType(c.dataType ?? '')]))))
  }

  private get pk(): string {
    return quoteIdent(this.rt.config.legacy.primaryKey)
  }

  private shardAt(dim: Dimension, shard: number): Location {
    const p = this.rt.config.dimensions[dim].shards[shard]!
    return { side: dim, host: p.host, database: p.database, table: p.table }
  }

  /** The user shard a key's id names, when it is a well-formed new id (a shard field of 120..127 names none). */
  private idShard(key: string): number | undefined {
    if (compareIds(key, this.rt.config.legacy.idCeiling) <= 0) return undefined
    const s = shardFieldUnchecked(key)
    return s < LOGICAL_SHARDS ? s : undefined
  }

  /**
   * Where the source row of `key` may live: legacy, or (from write-shards on)
   * the user shard its id names, its lookup row names, or the report saw it in.
   */
  async sourceLocations(key: string, diffs: readonly Difference[]): Promise<Location[]> {
    if (this.source === 'legacy') return [legacyLocation(this.rt.config)]
    const fromId = this.idShard(key)
    if (fromId !== undefined) return [this.shardAt('user', fromId)]
    if (compareIds(key, this.rt.config.legacy.idCeiling) <= 0) {
      const look = await readLookup(this.rt, key)
      if (look) return [this.shardAt('user', shardOfKey(look.userId))]
    }
    // No route: wherever the report saw it in the user dimension (a key no route reaches has no source row).
    const seen = [...new Set(diffs.filter((d) => d.pair !== 'legacy-merchant' && d.shard !== undefined).map((d) => d.shard!))]
    return seen.map((s) => this.shardAt('user', s))
  }

  /** The SELECT of the full source row (append ` LOCK IN SHARE MODE` to lock it). */
  selectSql(l: Location): string {
    return `SELECT ${selectListSql(this.columns, this.kinds)} FROM ${qualified(l.database, l.table)} WHERE ${this.pk} = ?`
  }

  /** What to do where, for every copy of `key` to match `row` (the source's row, or undefined). */
  planFor(key: string, row: Readonly<Record<string, unknown>> | undefined, diffs: readonly Difference[]): Array<{ target: 'legacy' | Dimension; location: Location; action: 'upsert' | 'delete' }> {
    const cfg = this.rt.config
    const out: Array<{ target: 'legacy' | Dimension; location: Location; action: 'upsert' | 'delete' }> = []
    for (const target of this.targets) {
      // A source row no key routes (NULL or negative: its key must be fixed in legacy) is kept nowhere: its copies go.
      const routed = row === undefined || target === 'legacy' ? undefined : [shardOfValue(row[cfg.legacy.userColumn] ?? null), shardOfValue(row[cfg.legacy.merchantColumn] ?? null)]
      const keep: Location | undefined = row === undefined ? undefined : target === 'legacy' ? legacyLocation(cfg) : routed!.includes(undefined) ? undefined : this.shardAt(target, routed![target === 'user' ? 0 : 1]!)
      if (keep) out.push({ target, location: keep, action: 'upsert' })
      if (target === 'legacy') {
        if (!row) out.push({ target, location: legacyLocation(cfg), action: 'delete' })
        continue
      }
      // Every other table of this dimension the report saw the key in, and (no source row) where it would route.
      const strays = new Set<number>()
      for (const d of diffs) {
        const inDim = d.pair === 'legacy-user' ? 'user' : d.pair === 'legacy-merchant' ? 'merchant' : d.kind === 'extra' || d.kind === 'misplaced' || d.kind === 'different' ? 'merchant' : undefined
        if (inDim === target && d.shard !== undefined) strays.add(d.shard)
      }
      const fromId = this.idShard(key)
      if (!row && target === 'user' && fromId !== undefined) strays.add(fromId)
      for (const sh of strays) {
        const l = this.shardAt(target, sh)
        if (!keep || locationKey(keep) !== locationKey(l)) out.push({ target, location: l, action: 'delete' })
      }
    }
    return out
  }

  /** The statements that make every copy of `key` match `row`, as text a person can read and run. */
  statementsFor(key: string, row: RowDataPacket | undefined, diffs: readonly Difference[]): RepairStatement[] {
    return this.planFor(key, row, diffs).map((p) => (p.action === 'upsert' && row ? this.upsert(key, p.target, p.location, row) : this.del(key, p.target, p.location)))
  }

  private ref(l: Location): { host: string; shard?: number } {
    if (l.side === 'legacy') return { host: 'legacy' }
    const shard = this.rt.config.dimensions[l.side].shards.findIndex((p) => p.host === l.host && p.database === l.database && p.table === l.table)
    return { host: l.host, ...(shard >= 0 ? { shard } : {}) }
  }

  private upsert(key: string, target: 'legacy' | Dimension, l: Location, row: RowDataPacket): RepairStatement {
    const cols = this.columns.map(quoteIdent)
    const sets = cols.filter((c) => c !== this.pk).map((c) => `${c} = VALUES(${c})`)
    return {
      key,
      target,
      ...this.ref(l),
      action: 'upsert',
      sql: `INSERT INTO ${qualified(l.database, l.table)} (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')}) ON DUPLICATE KEY UPDATE ${sets.join(', ')}`,
      params: this.columns.map((c) => row[c]),
    }
  }

  private del(key: string, target: 'legacy' | Dimension, l: Location): RepairStatement {
    return { key, target, ...this.ref(l), action: 'delete', sql: `DELETE FROM ${qualified(l.database, l.table)} WHERE ${this.pk} = ?`, params: [key] }
  }

  /** The pool of a location. */
  poolOf(l: Location) {
    return l.side === 'legacy' ? this.rt.legacy() : this.rt.host(l.host)
  }

  /** Reads the source row of `key` without locks (the first location that has it), for printing. */
  async readSource(key: string, diffs: readonly Difference[]): Promise<{ row: RowDataPacket | undefined; at: Location | undefined }> {
    const locs = await this.sourceLocations(key, diffs)
    for (const l of locs) {
      const [rows] = await this.poolOf(l).query<RowDataPacket[]>(this.selectSql(l), [key])
      if (rows[0]) return { row: rows[0], at: l }
    }
    return { row: undefined, at: locs[0] }
  }
}
