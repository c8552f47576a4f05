/**
 * Chunk checksums computed on the servers: for a key range, each side's
 * row count, the XOR of its 64-bit row hashes (order-free within the chunk),
 * and two placement counts, all in one aggregate query per table group. Only
 * these few numbers cross the wire; the verifier narrows a chunk to rows only
 * when its numbers differ.
 *
 * - legacy: `COUNT`, `BIT_XOR(hash)`, and new ids whose shard field is not
 *   their user's shard; the chunk's upper key comes from the same query.
 * - a dimension: the same sums over its 120 tables (XOR and add combine
 *   them), plus the rows that sit in a table their key does not route to
 *   (`MOD(key, 120) <> shard`). A misplaced row has the right hash, so the
 *   placement count is what catches it; a row copied into two tables shows
 *   up as a misplaced row and a count that is too high. Shard fields are
 *   counted on legacy only: a dimension whose count and hash match legacy
 *   holds the same ids and users.
 *
 * Legacy rows no key routes (a NULL or negative key: src/router/shard-function.ts)
 * are left out of legacy's sums, since no dimension holds them; the verifier
 * lists them by key on their own (`unroutable`).
 */
import pLimit from 'p-limit'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import type { ShardkitConfig } from '../config/schema.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { LOGICAL_SHARDS, type Dimension } from '../router/shard-function.js'
import type { KeyRange } from './streams.js'

export interface SideSum {
  readonly count: number
  readonly xor: bigint
  /** Rows in a table their dimension key does not route to (dimensions only). */
  readonly misplaced: number
  /** New ids (above the ceiling) whose shard field is not their user's shard. */
  readonly badField: number
}

export const EMPTY_SUM: SideSum = { count: 0, xor: 0n, misplaced: 0, badField: 0 }

export function addSums(a: SideSum, b: SideSum): SideSum {
  return { count: a.count + b.count, xor: a.xor ^ b.xor, misplaced: a.misplaced + b.misplaced, badField: a.badField + b.badField }
}

export function sameRows(a: SideSum, b: SideSum): boolean {
  return a.count === b.count && a.xor === b.xor
}

interface TableGroup {
  readonly pool: Pool
  readonly tables: { readonly shard: number; readonly name: string }[]
}

/** Builds and runs the checksum queries of one verify run. */
export class ChunkChecksummer {
  private readonly pk: string
  private readonly hash: string
  private readonly bad: string
  private readonly groups: Record<Dimension, TableGroup[]>
  private readonly limit: ReturnType<typeof pLimit>
  /** `NOT (<unroutable>)` for legacy reads, or '' (see {@link ChunkChecksummer.leaveOut}). */
  private routable: string

  /**
   * @param groupSize tables per aggregate query (one round trip each)
   * @param concurrency aggregate queries in flight at once
   */
  constructor(
    private readonly rt: Runtime,
    /** The row hash expression (`rowHashSql`). */
    hashSql: string,
    o: { groupSize?: number; concurrency?: number; unroutable?: string } = {},
  ) {
    const cfg = rt.config
    this.pk = quoteIdent(cfg.legacy.primaryKey)
    this.hash = hashSql
    // The shard field is the id's low 7 bits (src/idgen/layout.ts); legacy ids carry none.
    this.bad = `(${this.pk} > ${BigInt(cfg.legacy.idCeiling).toString()} AND (${this.pk} & 127) <> MOD(${quoteIdent(cfg.legacy.userColumn)}, ${LOGICAL_SHARDS}))`
    this.groups = { user: groupTables(rt, cfg, 'user', o.groupSize ?? 60), merchant: groupTables(rt, cfg, 'merchant', o.groupSize ?? 60) }
    this.limit = pLimit(o.concurrency ?? 2)
    this.routable = o.unroutable ? `NOT (${o.unroutable})` : ''
  }

  /**
   * Leaves legacy rows matching `condition` out of legacy's sums (or none, with '').
   * The verifier leaves unroutable rows out only when it knows some exist: the
   * filter costs about 6% of legacy's scan (200k rows, measured).
   */
  leaveOut(condition: string): void {
    this.routable = condition ? `NOT (${condition})` : ''
  }

  /** Aggregate queries in flight at once; job control (`shardctl verify throttle --concurrency`) changes it between chunks. */
  get concurrency(): number {
    return this.limit.concurrency
  }

  set concurrency(n: number) {
    this.limit.concurrency = n
  }

  /**
   * The next legacy chunk after `lo` (and at most `upTo`): its sums and its
   * last key (`hi`), or `hi: null` when fewer than `size` rows remain (the
   * last chunk, which reaches to `upTo`).
   */
  async legacyChunk(lo: string | null, size: number, upTo: string | null = null): Promise<{ sum: SideSum; hi: string | null; rows: number }> {
    const cfg = this.rt.config
    const { where, params } = this.rangeWhere({ lo, hi: upTo }, this.routable)
    const sql = `SELECT COUNT(*) AS c, BIT_XOR(h) AS x, MAX(pk) AS hi, SUM(bad) AS b FROM (SELECT ${this.pk} AS pk, ${this.hash} AS h, ${this.bad} AS bad FROM ${qualified(cfg.legacy.database, cfg.legacy.table)} ${where} ORDER BY ${this.pk} LIMIT ${size}) t`
    const [[r]] = await this.limit(() => this.rt.legacy().query<RowDataPacket[]>(sql, params))
    const count = Number(r!.c)
    return {
      sum: { count, xor: BigInt(r!.x ?? 0), misplaced: 0, badField: Number(r!.b ?? 0) },
      hi: count < size ? null : String(r!.hi),
      rows: count,
    }
  }

  /** The smallest and largest legacy key (null when the table is empty). */
  async legacyBounds(): Promise<{ min: string | null; max: string | null }> {
    const cfg = this.rt.config
    const [[r]] = await this.rt.legacy().query<RowDataPacket[]>(`SELECT MIN(${this.pk}) AS lo, MAX(${this.pk}) AS hi FROM ${qualified(cfg.legacy.database, cfg.legacy.table)}`)
    return { min: r!.lo === null ? null : String(r!.lo), max: r!.hi === null ? null : String(r!.hi) }
  }

  /** The first legacy key above `after`, or null. */
  async legacyKeyAfter(after: string): Promise<string | null> {
    const cfg = this.rt.config
    const [[r]] = await this.rt.legacy().query<RowDataPacket[]>(`SELECT MIN(${this.pk}) AS k FROM ${qualified(cfg.legacy.database, cfg.legacy.table)} WHERE ${this.pk} > ?`, [after])
    return r!.k === null ? null : String(r!.k)
  }

  /** Legacy's sums over a fixed key range (a chunk checked again). */
  async legacySum(range: KeyRange): Promise<SideSum> {
    const cfg = this.rt.config
    const { where, params } = this.rangeWhere(range, this.routable)
    const sql = `SELECT COUNT(*) AS c, BIT_XOR(${this.hash}) AS x, SUM(${this.bad}) AS b FROM ${qualified(cfg.legacy.database, cfg.legacy.table)} ${where}`
    const [[r]] = await this.limit(() => this.rt.legacy().query<RowDataPacket[]>(sql, params))
    return { count: Number(r!.c), xor: BigInt(r!.x ?? 0), misplaced: 0, badField: Number(r!.b ?? 0) }
  }

  private rangeWhere(range: KeyRange, extra = ''): { where: string; params: string[] } {
    const conds: string[] = extra ? [extra] : []
    const params: string[] = []
    if (range.lo !== null) (conds.push(`${this.pk} > ?`), params.push(range.lo))
    if (range.hi !== null) (conds.push(`${this.pk} <= ?`), params.push(range.hi))
    return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params }
  }

  /** A dimension's sums over a key range, all 120 tables. */
  async dimensionSum(dim: Dimension, range: KeyRange): Promise<SideSum> {
    const cfg = this.rt.config
    const keyCol = quoteIdent(dim === 'user' ? cfg.legacy.userColumn : cfg.legacy.merchantColumn)
    const { where, params: rangeParams } = this.rangeWhere(range)
    const parts = await Promise.all(
      this.groups[dim].map((g) =>
        this.limit(async () => {
          const sql = g.tables
            .map((t) => `SELECT COUNT(*) AS c, BIT_XOR(${this.hash}) AS x, SUM(MOD(${keyCol}, ${LOGICAL_SHARDS}) <> ${t.shard}) AS mis, 0 AS b FROM ${t.name} ${where}`)
            .join(' UNION ALL ')
          const params = g.tables.flatMap(() => rangeParams)
          const [rows] = await g.pool.query<RowDataPacket[]>(sql, params)
          return rows.reduce<SideSum>((acc, r) => addSums(acc, { count: Number(r.c), xor: BigInt(r.x ?? 0), misplaced: Number(r.mis ?? 0), badField: Number(r.b ?? 0) }), EMPTY_SUM)
        }),
      ),
    )
    return parts.reduce(addSums, EMPTY_SUM)
  }
}

/** A dimension's tables, grouped by host pool in runs of `size` (one UNION ALL query each). */
function groupTables(rt: Runtime, cfg: ShardkitConfig, dim: Dimension, size: number): TableGroup[] {
  const byHost = new Map<string, { shard: number; name: string }[]>()
  for (const p of cfg.dimensions[dim].shards) {
    const list = byHost.get(p.host) ?? []
    list.push({ shard: p.shard, name: qualified(p.database, p.table) })
    byHost.set(p.host, list)
  }
  const out: TableGroup[] = []
  for (const [host, tables] of byHost) {
    for (let i = 0; i < tables.length; i += size) out.push({ pool: rt.host(host), tables: tables.slice(i, i + size) })
  }
  return out
}
