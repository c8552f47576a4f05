/**
 * Proves that every order the API acknowledged exists exactly once in each
 * dimension, and in the shard its key routes to: every one of the 120 shard
 * tables of a dimension is queried directly by id (chunks of ids, bound
 * parameters), and the hits are counted per id.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { DIMENSIONS, qualified, quoteIdent, shardOfKey, type Runtime } from '../../src/index.js'

/** What the check found in one dimension. */
export interface DimensionPresence {
  readonly dimension: 'user' | 'merchant'
  readonly checked: number
  readonly exactlyOnce: number
  readonly missing: readonly string[]
  readonly duplicated: readonly string[]
  /** Ids found in a shard other than the one their key routes to. */
  readonly misplaced: readonly string[]
}

/** The whole check. `ok` is true when every id is present once, in the right shard, in both dimensions. */
export interface PresenceReport {
  readonly acknowledged: number
  /** Ids the load generator was told about twice (the id source issued one twice). */
  readonly acknowledgedTwice: number
  readonly dimensions: readonly DimensionPresence[]
  /** How many of the ids are also in legacy (all created before `shards`, none after). */
  readonly inLegacy: number
  readonly ok: boolean
}

const CHUNK = 2_000
const sample = (xs: string[]) => xs.slice(0, 20)

/** Runs the check over `ids` (decimal strings, as the API returned them). */
export async function checkExactlyOnce(rt: Runtime, ids: readonly string[]): Promise<PresenceReport> {
  const unique = [...new Set(ids)]
  const dims: DimensionPresence[] = []
  for (const dim of DIMENSIONS) {
    const keyColumn = quoteIdent(dim === 'user' ? rt.config.legacy.userColumn : rt.config.legacy.merchantColumn)
    const pk = quoteIdent(rt.config.legacy.primaryKey)
    const hits = new Map<string, number>()
    const misplaced: string[] = []
    for (const p of rt.config.dimensions[dim].shards) {
      const pool = rt.host(p.host)
      for (let i = 0; i < unique.length; i += CHUNK) {
        const chunk = unique.slice(i, i + CHUNK)
        const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${pk} AS id, ${keyColumn} AS k FROM ${qualified(p.database, p.table)} WHERE ${pk} IN (?)`, [chunk])
        for (const r of rows) {
          const id = String(r.id)
          hits.set(id, (hits.get(id) ?? 0) + 1)
          if (shardOfKey(String(r.k)) !== p.shard) misplaced.push(id)
        }
      }
    }
    const missing = unique.filter((id) => !hits.has(id))
    const duplicated = unique.filter((id) => (hits.get(id) ?? 0) > 1)
    dims.push({ dimension: dim, checked: unique.length, exactlyOnce: unique.length - missing.length - duplicated.length, missing: sample(missing), duplicated: sample(duplicated), misplaced: sample(misplaced) })
  }
  let inLegacy = 0
  const l = rt.config.legacy
  for (let i = 0; i < unique.length; i += CHUNK) {
    const [rows] = await rt.legacy().query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(l.database, l.table)} WHERE ${quoteIdent(l.primaryKey)} IN (?)`, [unique.slice(i, i + CHUNK)])
    inLegacy += Number(rows[0]!.n)
  }
  const acknowledgedTwice = ids.length - unique.length
  const ok = acknowledgedTwice === 0 && dims.every((d) => d.exactlyOnce === d.checked && d.misplaced.length === 0)
  return { acknowledged: ids.length, acknowledgedTwice, dimensions: dims, inLegacy, ok }
}
