/**
 * The verifier: proves legacy, the user dimension and the merchant dimension
 * hold exactly the same orders, every row.
 *
 * Each side is read as a stream of (primary key, user, merchant, row hash)
 * in primary-key order, in keyset chunks: legacy as one stream, each
 * dimension as a merge of its 120 shard streams. The hashes are computed by
 * the servers (`row-hash.ts`); only keys and hashes cross the wire, and at
 * most one chunk per stream is held in memory. The three streams are walked
 * together, so each row is compared once across all three pairs, and also
 * checked for placement (the shard its key routes to) and, for new ids, for
 * the shard field matching the user's shard.
 *
 * Rows change while this runs: every difference is checked again by point
 * reads after a delay, over several rounds, and only one still present after
 * the last round is reported. A real difference never goes away by itself,
 * so it is never dropped; a row in flight settles and is not a false alarm.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { LOGICAL_SHARDS, shardOfKey, type Dimension } from '../router/shard-function.js'
import { compareIds, shardFieldUnchecked } from '../idgen/layout.js'
import { legacyColumns } from '../backfill/copier.js'
import { rowHashSql } from './row-hash.js'

export type Side = 'legacy' | 'user' | 'merchant'
export type Pair = 'legacy-user' | 'legacy-merchant' | 'user-merchant'
export type DiffKind = 'missing' | 'extra' | 'different' | 'misplaced' | 'bad-shard-field'

/** One difference: identifiers only, never row data. */
export interface Difference {
  readonly pair: Pair
  readonly kind: DiffKind
  readonly key: string
  /** Where the row was found or expected (dimension shard), when it applies. */
  readonly shard?: number
}

interface Entry {
  readonly pk: string
  readonly user: string
  readonly merchant: string
  readonly hash: string
  /** The logical shard table it was read from (dimension streams). */
  readonly shard: number
}

/** A keyset-chunked stream of entries from one table, in pk order. */
class TableStream {
  private buf: Entry[] = []
  private i = 0
  private last: string | null = null
  private done = false
  constructor(
    private readonly pool: Pool,
    private readonly sql: string,
    private readonly pkCol: string,
    private readonly shard: number,
    private readonly chunk: number,
  ) {}

  /** True when the buffer is used up and more rows may exist. */
  get needsFill(): boolean {
    return this.i >= this.buf.length && !this.done
  }

  async fill(): Promise<void> {
    const where = this.last === null ? '' : `WHERE ${quoteIdent(this.pkCol)} > ?`
    const [rows] = await this.pool.query<RowDataPacket[]>(this.sql.replace('/*WHERE*/', where), this.last === null ? [] : [this.last])
    this.buf = rows.map((r) => ({ pk: String(r.pk), user: String(r.u), merchant: String(r.m), hash: r.h as string, shard: this.shard }))
    this.i = 0
    if (rows.length < this.chunk) this.done = true
    if (this.buf.length > 0) this.last = this.buf[this.buf.length - 1]!.pk
  }

  /** The current entry (call `fill` first when `needsFill`). */
  current(): Entry | undefined {
    return this.buf[this.i]
  }

  next(): void {
    this.i++
  }
}

/** Merges several pk-ordered streams into one pk-ordered stream. */
class MergedStream {
  constructor(private readonly streams: TableStream[]) {}

  private async ready(): Promise<void> {
    const pending = this.streams.filter((s) => s.needsFill)
    if (pending.length > 0) await Promise.all(pending.map((s) => s.fill()))
  }

  /** The smallest pk among the streams' current entries. */
  async peekMin(): Promise<string | undefined> {
    await this.ready()
    let min: string | undefined
    for (const s of this.streams) {
      const h = s.current()
      if (h && (min === undefined || compareIds(h.pk, min) < 0)) min = h.pk
    }
    return min
  }

  /** Takes every current entry whose pk is `key` (more than one when a row sits in two shards). */
  take(key: string): Entry[] {
    const out: Entry[] = []
    for (const s of this.streams) {
      const h = s.current()
      if (h && h.pk === key) {
        out.push(h)
        s.next()
      }
    }
    return out
  }
}

export interface DiffContext {
  readonly ceiling: string
  readonly pairs: readonly Pair[]
}

/** Compares what each side holds for one key (pure). */
export function compareKey(key: string, l: Entry | undefined, u: Entry[], m: Entry[], ctx: DiffContext): Difference[] {
  const out: Difference[] = []
  const dimCheck = (pair: Pair, side: Dimension, copies: Entry[]) => {
    if (!l) {
      for (const c of copies) out.push({ pair, kind: 'extra', key, shard: c.shard })
      return
    }
    const want = shardOfKey(side === 'user' ? l.user : l.merchant)
    if (copies.length === 0) out.push({ pair, kind: 'missing', key, shard: want })
    for (const c of copies) {
      if (c.shard !== want) out.push({ pair, kind: 'misplaced', key, shard: c.shard })
      else if (c.hash !== l.hash) out.push({ pair, kind: 'different', key, shard: c.shard })
    }
  }
  if (ctx.pairs.includes('legacy-user')) dimCheck('legacy-user', 'user', u)
  if (ctx.pairs.includes('legacy-merchant')) dimCheck('legacy-merchant', 'merchant', m)
  if (!ctx.pairs.includes('legacy-user') && !ctx.pairs.includes('legacy-merchant')) {
    // Legacy is retired: each copy must sit where its own key routes.
    for (const c of u) if (c.shard !== shardOfKey(c.user)) out.push({ pair: 'user-merchant', kind: 'misplaced', key, shard: c.shard })
    for (const c of m) if (c.shard !== shardOfKey(c.merchant)) out.push({ pair: 'user-merchant', kind: 'misplaced', key, shard: c.shard })
  }
  if (ctx.pairs.includes('user-merchant')) {
    const a = u[0]
    const b = m[0]
    if (a && !b) out.push({ pair: 'user-merchant', kind: 'missing', key, shard: shardOfKey(a.merchant) })
    else if (!a && b) out.push({ pair: 'user-merchant', kind: 'extra', key, shard: b.shard })
    else if (a && b && a.hash !== b.hash) out.push({ pair: 'user-merchant', kind: 'different', key, shard: b.shard })
  }
  const owner = l ?? u[0]
  if (owner && compareIds(key, ctx.ceiling) > 0 && shardFieldUnchecked(key) !== shardOfKey(owner.user)) {
    out.push({ pair: ctx.pairs.includes('legacy-user') ? 'legacy-user' : 'user-merchant', kind: 'bad-shard-field', key })
  }
  return out
}

export interface VerifyOptions {
  readonly dimension?: Dimension | 'all'
  /**
   * Legacy is no longer written (stage `shards`): compare the user dimension
   * (the source of truth from write-shards on) with the merchant dimension only.
   */
  readonly legacyRetired?: boolean
  /** Rows per legacy chunk (default 5000); shard streams read chunk/4 each. */
  readonly chunkSize?: number
  /** Re-check rounds for differences (default 3) and the delay before each (default 500 ms). */
  readonly rounds?: number
  readonly roundDelayMs?: number
  /** Differences kept for re-check and the report (default 100,000); more are counted. */
  readonly maxDifferences?: number
  readonly signal?: AbortSignal
  readonly onProgress?: (p: { rowsCompared: number }) => void
}

export interface VerifyResult {
  readonly dimension: Dimension | 'all'
  readonly startedAt: string
  readonly finishedAt: string
  readonly rowsCompared: { readonly legacy: number; readonly user: number; readonly merchant: number }
  /** Distinct primary keys compared across all sides. */
  readonly keysCompared: number
  readonly pairs: readonly Pair[]
  readonly clean: boolean
  readonly differences: readonly Difference[]
  /** Differences found but not kept because of `maxDifferences`. */
  readonly overflow: number
  readonly byPair: Readonly<Record<string, Partial<Record<DiffKind, number>>>>
  readonly seconds: number
}

export interface VerifySources {
  readonly columns: string[]
  readonly hashSql: string
}

function pairsFor(d: Dimension | 'all'): Pair[] {
  return d === 'user' ? ['legacy-user'] : d === 'merchant' ? ['legacy-merchant'] : ['legacy-user', 'legacy-merchant', 'user-merchant']
}

/**
 * Runs a full verify. Expected outcomes (differences) are in the result, not thrown.
 * @throws ShardkitError `PRECONDITION_FAILED` when tables are missing
 */
export async function runVerify(rt: Runtime, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const cfg = rt.config
  const dimension = opts.dimension ?? 'all'
  const pairs: Pair[] = opts.legacyRetired ? ['user-merchant'] : pairsFor(dimension)
  const started = new Date()
  const t0 = performance.now()
  const columns = await legacyColumns(rt)
  const pk = cfg.legacy.primaryKey
  const select = (table: string) =>
    `SELECT ${quoteIdent(pk)} AS pk, ${quoteIdent(cfg.legacy.userColumn)} AS u, ${quoteIdent(cfg.legacy.merchantColumn)} AS m, ${rowHashSql(columns)} AS h FROM ${table} /*WHERE*/ ORDER BY ${quoteIdent(pk)} LIMIT `
  const chunk = opts.chunkSize ?? 5000
  const shardChunk = Math.max(100, Math.floor(chunk / 4))
  const legacy = new MergedStream(opts.legacyRetired ? [] : [new TableStream(rt.legacy(), select(qualified(cfg.legacy.database, cfg.legacy.table)) + chunk, pk, -1, chunk)])
  const dimStream = (d: Dimension) =>
    new MergedStream(cfg.dimensions[d].shards.map((p) => new TableStream(rt.host(p.host), select(qualified(p.database, p.table)) + shardChunk, pk, p.shard, shardChunk)))
  const needUser = pairs.includes('legacy-user') || pairs.includes('user-merchant')
  const needMerchant = pairs.includes('legacy-merchant') || pairs.includes('user-merchant')
  const user = needUser ? dimStream('user') : undefined
  const merchant = needMerchant ? dimStream('merchant') : undefined
  const ctx: DiffContext = { ceiling: cfg.legacy.idCeiling, pairs }
  const maxDiffs = opts.maxDifferences ?? 100_000
  const found: Difference[] = []
  let overflow = 0
  const counts = { legacy: 0, user: 0, merchant: 0 }
  let keys = 0

  for (;;) {
    opts.signal?.throwIfAborted()
    const heads = [await legacy.peekMin(), await user?.peekMin(), await merchant?.peekMin()].filter((x): x is string => x !== undefined)
    if (heads.length === 0) break
    const key = heads.reduce((a, b) => (compareIds(a, b) <= 0 ? a : b))
    keys++
    const l = legacy.take(key)[0]
    const u = user ? user.take(key) : []
    const m = merchant ? merchant.take(key) : []
    if (l) counts.legacy++
    counts.user += u.length
    counts.merchant += m.length
    for (const d of compareKey(key, l, u, m, ctx)) {
      if (found.length < maxDiffs) found.push(d)
      else overflow++
    }
    if (l && counts.legacy % 10_000 === 0) opts.onProgress?.({ rowsCompared: counts.legacy })
  }

  let remaining = found
  const rounds = opts.rounds ?? 3
  for (let r = 0; r < rounds && remaining.length > 0; r++) {
    await new Promise((res) => setTimeout(res, opts.roundDelayMs ?? 500))
    remaining = await recheck(rt, remaining, columns, ctx)
  }
  const byPair: Record<string, Partial<Record<DiffKind, number>>> = {}
  for (const d of remaining) {
    const p = (byPair[d.pair] ??= {})
    p[d.kind] = (p[d.kind] ?? 0) + 1
  }
  const clean = remaining.length === 0 && overflow === 0
  return {
    dimension,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    rowsCompared: counts,
    keysCompared: keys,
    pairs,
    clean,
    differences: remaining,
    overflow,
    byPair,
    seconds: (performance.now() - t0) / 1000,
  }
}

/** Re-reads each differing key from every side by point queries and compares again. */
async function recheck(rt: Runtime, diffs: readonly Difference[], columns: string[], ctx: DiffContext): Promise<Difference[]> {
  const cfg = rt.config
  const keys = [...new Set(diffs.map((d) => d.key))]
  const out: Difference[] = []
  const pk = quoteIdent(cfg.legacy.primaryKey)
  const sel = `SELECT ${pk} AS pk, ${quoteIdent(cfg.legacy.userColumn)} AS u, ${quoteIdent(cfg.legacy.merchantColumn)} AS m, ${rowHashSql(columns)} AS h FROM `
  const toEntry = (r: RowDataPacket, shard: number): Entry => ({ pk: String(r.pk), user: String(r.u), merchant: String(r.m), hash: r.h, shard })
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
        add('user', key, shardOfKey(l.user))
        add('merchant', key, shardOfKey(l.merchant))
      }
    }
    for (const d of diffs) {
      if (!batch.includes(d.key)) continue
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

/** Throws `INCONSISTENT` when a result is not clean (for callers that want an exception). */
export function assertClean(r: VerifyResult): void {
  if (!r.clean) {
    throw new ShardkitError('INCONSISTENT', `verify found ${r.differences.length + r.overflow} differing rows; run \`shardctl repair\` then \`shardctl verify\``, { differences: r.differences.length + r.overflow })
  }
}
