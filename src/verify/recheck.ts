/**
 * Re-checks suspected differences by point reads on every side: a row that
 * was in flight has settled by now and drops out; a real difference stays.
 * Also what `--since` and `repair --execute` use to compare a set of keys.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { LOGICAL_SHARDS, type Dimension } from '../router/shard-function.js'
import { compareIds, shardFieldUnchecked } from '../idgen/layout.js'
import { compareKey, shardOfValue, type DiffContext, type Difference } from './compare.js'
import { toEntry, type Entry } from './streams.js'

/** Re-reads each differing key from every side by point queries and compares again. */
export async function recheck(rt: Runtime, diffs: readonly Difference[], hashSql: string, ctx: DiffContext): Promise<Difference[]> {
  const cfg = rt.config
  const byKey = new Map<string, Difference[]>()
  for (const d of diffs) {
    const list = byKey.get(d.key)
    if (list) list.push(d)
    else byKey.set(d.key, [d])
  }
  const keys = [...byKey.keys()]
  const out: Difference[] = []
  const pk = quoteIdent(cfg.legacy.primaryKey)
  const sel = `SELECT ${pk} AS pk, ${quoteIdent(cfg.legacy.userColumn)} AS u, ${quoteIdent(cfg.legacy.merchantColumn)} AS m, ${hashSql} AS h FROM `
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500)
    const [lrows] = await rt.legacy().query<RowDataPacket[]>(`${sel}${qualified(cfg.legacy.database, cfg.legacy.table)} WHERE ${pk} IN (?)`, [batch])
    const legacyBy = new Map(lrows.map((r) => [String(r.pk), toEntry(r, -1)]))
    // Shards to look in: where legacy routes the key, and wherever a difference saw it.
    const look = new Map<string, Set<string>>()
    const add = (dim: Dimension, key: string, shard: number | undefined) => {
      if (shard === undefined || shard < 0 || shard >= LOGICAL_SHARDS) return
      const k = `${dim}:${shard}`
      let set = look.get(k)
      if (!set) look.set(k, (set = new Set()))
      set.add(key)
    }
    for (const key of batch) {
      const l = legacyBy.get(key)
      if (l) {
        add('user', key, shardOfValue(l.user))
        add('merchant', key, shardOfValue(l.merchant))
      }
    }
    for (const d of batch.flatMap((k) => byKey.get(k)!)) {
      if (d.pair === 'legacy-user') add('user', d.key, d.shard)
      else add('merchant', d.key, d.shard)
      if (d.pair === 'user-merchant' && !legacyBy.has(d.key)) {
        // No legacy row to route by: a new id names its user shard; else look in every user shard.
        if (compareIds(d.key, ctx.ceiling) > 0) add('user', d.key, shardFieldUnchecked(d.key))
        else for (let s = 0; s < LOGICAL_SHARDS; s++) add('user', d.key, s)
      }
    }
    const found: Record<Dimension, Map<string, Entry[]>> = { user: new Map(), merchant: new Map() }
    await Promise.all(
      [...look].map(async ([k, set]) => {
        const [dim, s] = k.split(':') as [Dimension, string]
        const p = cfg.dimensions[dim].shards[Number(s)]!
        const [rows] = await rt.host(p.host).query<RowDataPacket[]>(`${sel}${qualified(p.database, p.table)} WHERE ${pk} IN (?)`, [[...set]])
        for (const r of rows) {
          const list = found[dim].get(String(r.pk)) ?? []
          list.push(toEntry(r, p.shard))
          found[dim].set(String(r.pk), list)
        }
      }),
    )
    const retired = !ctx.pairs.includes('legacy-user') && !ctx.pairs.includes('legacy-merchant')
    for (const key of batch) out.push(...compareKey(key, retired ? undefined : legacyBy.get(key), found.user.get(key) ?? [], found.merchant.get(key) ?? [], ctx))
  }
  return out
}

