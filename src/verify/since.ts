/**
 * `verify --since <time>`: a quick check during cutover of the rows changed
 * after a time. Each side is scanned on its server for rows whose
 * `updated_at` is at or after the time (only their keys cross the wire, in
 * keyset chunks), and every such key is compared across all sides by point
 * reads, then checked again over the usual rounds.
 *
 * A row deleted after the time leaves nothing to find, so a delete that did
 * not reach a copy shows only in a full verify.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import type { Dimension } from '../router/shard-function.js'
import { UPDATED_COLUMN } from '../dualwrite/row-sql.js'
import { pairsFor, type DiffContext, type DiffKind, type Difference, type Pair } from './compare.js'
import { prepareQueries, settle, type VerifyOptions, type VerifyResult } from './differ.js'
import { recheck } from './recheck.js'
import { readColumnInfo } from './row-hash.js'

const KEY_CHUNK = 5000

/** `2026-11-25 03:00:00.000` in UTC, as the tables store times. */
function sqlTime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '')
}

/**
 * Compares the rows changed at or after `since` on any side.
 * @throws ShardkitError `USAGE` when the table has no `updated_at` column
 */
export async function runVerifySince(rt: Runtime, since: Date, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const cfg = rt.config
  const started = new Date()
  const t0 = performance.now()
  const columns = await readColumnInfo(rt.legacy(), cfg.legacy.database, cfg.legacy.table)
  if (!columns.some((c) => c.name === UPDATED_COLUMN)) {
    throw new ShardkitError('USAGE', `--since needs an ${UPDATED_COLUMN} column in ${cfg.legacy.database}.${cfg.legacy.table}; run a full verify instead`, { argument: '--since' })
  }
  const dimension = opts.dimension ?? 'all'
  const pairs: Pair[] = opts.legacyRetired ? ['user-merchant'] : pairsFor(dimension)
  const ctx: DiffContext = { ceiling: cfg.legacy.idCeiling, pairs }
  const q = await prepareQueries(rt, opts.hash ? { hash: opts.hash } : {})
  const maxDiffs = opts.maxDifferences ?? 100_000
  const found: Difference[] = []
  let overflow = 0
  const counts = { legacy: 0, user: 0, merchant: 0 }
  const foundIds = new Set<string>()
  const pk = quoteIdent(cfg.legacy.primaryKey)
  const at = sqlTime(since)

  // Each changed key becomes a suspect; the point reads decide.
  const check = async (suspects: Difference[]) => {
    if (suspects.length === 0) return
    for (const d of await recheck(rt, suspects, q.hashSql, ctx)) {
      // A key changed on two sides is found twice: keep it once.
      const id = `${d.pair}:${d.kind}:${d.key}:${d.shard ?? ''}`
      if (foundIds.has(id)) continue
      if (found.length < maxDiffs) (found.push(d), foundIds.add(id))
      else overflow++
    }
  }
  const scan = async (pool: ReturnType<Runtime['legacy']>, table: string, side: 'legacy' | Dimension, shard: number | undefined) => {
    let last: string | null = null
    for (;;) {
      opts.signal?.throwIfAborted()
      const [rows]: [RowDataPacket[], unknown] = await pool.query<RowDataPacket[]>(
        `SELECT ${pk} AS pk FROM ${table} WHERE ${quoteIdent(UPDATED_COLUMN)} >= ?${last === null ? '' : ` AND ${pk} > ?`} ORDER BY ${pk} LIMIT ${KEY_CHUNK}`,
        last === null ? [at] : [at, last],
      )
      const suspects: Difference[] = []
      for (const r of rows) {
        const key = String(r.pk)
        counts[side]++
        const pair: Pair = side === 'merchant' ? (opts.legacyRetired ? 'user-merchant' : 'legacy-merchant') : side === 'user' && opts.legacyRetired ? 'user-merchant' : 'legacy-user'
        suspects.push({ pair, kind: 'different', key, ...(shard === undefined ? {} : { shard }) })
      }
      await check(suspects)
      opts.onProgress?.({ rowsCompared: counts.legacy + counts.user + counts.merchant, chunks: 0, chunksNarrowed: 0 })
      if (rows.length < KEY_CHUNK) return
      last = String(rows[rows.length - 1]!.pk)
    }
  }
  if (!opts.legacyRetired) await scan(rt.legacy(), qualified(cfg.legacy.database, cfg.legacy.table), 'legacy', undefined)
  const dims: Dimension[] = opts.legacyRetired || dimension === 'all' ? ['user', 'merchant'] : [dimension]
  for (const d of dims) for (const p of cfg.dimensions[d].shards) await scan(rt.host(p.host), qualified(p.database, p.table), d, p.shard)

  const { remaining, journaled } = await settle(rt, found, q.hashSql, ctx, opts)
  const byPair: Record<string, Partial<Record<DiffKind, number>>> = {}
  for (const d of remaining) {
    const p = (byPair[d.pair] ??= {})
    p[d.kind] = (p[d.kind] ?? 0) + 1
  }
  // Keys changed on several sides are counted once per side.
  const keys = counts.legacy + counts.user + counts.merchant
  return {
    dimension,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    rowsCompared: counts,
    keysCompared: keys,
    pairs,
    clean: remaining.length === 0 && overflow === 0,
    differences: remaining,
    overflow,
    byPair,
    seconds: (performance.now() - t0) / 1000,
    chunks: 0,
    chunksNarrowed: 0,
    hash: q.flavor,
    journaled,
  }
}
