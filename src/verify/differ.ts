/**
 * The verifier: proves legacy, the user dimension and the merchant dimension
 * hold exactly the same orders, every row, like pt-table-checksum's chunks
 * but across a sharded fleet.
 *
 * 1. Legacy is walked in primary-key chunks (keyset). For each chunk the
 *    servers compute a checksum of every side over the chunk's key range
 *    (`chunk-checksum.ts`): legacy's table, and each dimension's 120 tables
 *    combined. Equal counts and XORed 64-bit row hashes, no misplaced rows
 *    and no bad shard fields: the chunk is proven without a row crossing the
 *    wire. The next legacy chunk is read while the dimensions are summed.
 * 2. A chunk whose sums differ is summed again (a write in flight settles in
 *    milliseconds); if it still differs it is narrowed to rows: the sides'
 *    (key, user, merchant, hash) streams for that range are merged and each
 *    key compared (`compare.ts`).
 * 3. Every row-level difference is checked again by point reads after a
 *    delay, over several rounds (`recheck.ts`); only one still present after
 *    the last round is reported. A real difference never goes away by
 *    itself, so it is never dropped.
 *
 * Once legacy is retired (stage `shards`) the user dimension is compared with
 * the merchant dimension row by row, in one streaming merge.
 *
 * Legacy rows that no key routes (NULL, or negative in a signed column) are
 * in no shard: they are left out of the chunk sums and listed by key as
 * `unroutable` differences, so a verify with such rows is never clean and
 * the cutover cannot advance past them. Fix the key in legacy, then run
 * `shardctl backfill --restart` (it copies them and records their routes).
 */
import type { RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { unroutableSql, type Dimension } from '../router/shard-function.js'
import { compareIds } from '../idgen/layout.js'
import { phase } from '../runtime/phase-hooks.js'
import { ChunkChecksummer, sameRows, type SideSum } from './chunk-checksum.js'
import { compareKey, pairsFor, type DiffContext, type DiffKind, type Difference, type Pair } from './compare.js'
import { recheck } from './recheck.js'
import { journaledKeys, waitForJournal } from './journal-wait.js'
import { readColumnInfo, rowHashSql, type HashFlavor } from './row-hash.js'
import { MergedStream, TableStream, type KeyRange } from './streams.js'
import type { ChunkGate } from '../jobs/control.js'

export type { Difference, DiffKind, Pair, Side } from './compare.js'
export { compareKey } from './compare.js'

export interface VerifyOptions {
  readonly dimension?: Dimension | 'all'
  /**
   * Legacy is no longer written (stage `shards`): compare the user dimension
   * (the source of truth from write-shards on) with the merchant dimension only.
   */
  readonly legacyRetired?: boolean
  /** Legacy rows per checksum chunk (default 100,000); a chunk that differs is split until it is small enough to compare row by row. */
  readonly chunkSize?: number
  /** Re-check rounds for differences (default 3) and the delay before each (default 500 ms). */
  readonly rounds?: number
  readonly roundDelayMs?: number
  /** Differences kept for re-check and the report (default 100,000); more are counted. */
  readonly maxDifferences?: number
  /**
   * How long to wait for the dual-write journal to clear keys that still
   * differ after the rounds and have a journal entry (default 15,000 ms).
   */
  readonly journalWaitMs?: number
  /** Checksum queries in flight at once (default 2). */
  readonly concurrency?: number
  /** The row hash (default `crc-pk`; `md5` is slower). */
  readonly hash?: HashFlavor
  readonly signal?: AbortSignal
  readonly onProgress?: (p: { rowsCompared: number; chunks: number; chunksNarrowed: number }) => void
  /** Job control (pause/resume/throttle from the control database, src/jobs), consulted before each legacy chunk. */
  readonly control?: ChunkGate
}

export interface VerifyResult {
  readonly dimension: Dimension | 'all'
  readonly startedAt: string
  readonly finishedAt: string
  readonly rowsCompared: { readonly legacy: number; readonly user: number; readonly merchant: number }
  /** Primary keys compared (legacy rows, plus rows found only in a dimension). */
  readonly keysCompared: number
  readonly pairs: readonly Pair[]
  readonly clean: boolean
  readonly differences: readonly Difference[]
  /** Differences found but not kept because of `maxDifferences`. */
  readonly overflow: number
  readonly byPair: Readonly<Record<string, Partial<Record<DiffKind, number>>>>
  readonly seconds: number
  readonly chunks: number
  /** Chunks whose sums differed twice and were narrowed down to rows. */
  readonly chunksNarrowed: number
  readonly hash: HashFlavor
  /** Legacy rows no key routes (counted in full; the first ones are in `differences` as `unroutable`). */
  readonly unroutable?: number
  /** Differing keys that still had a dual-write journal entry at the end: run `shardctl dualwrite drain`. */
  readonly journaled?: readonly string[]
}

/** What one run needs to read rows and hashes, built once. */
export interface VerifyQueries {
  readonly hashSql: string
  readonly flavor: HashFlavor
  readonly checksummer: ChunkChecksummer
  /** `SELECT pk, u, m, h FROM <table>` for the row streams. */
  rowSelect(table: string): string
  /** The condition "a key of this legacy row routes nowhere", or '' when no row can be so. */
  readonly unroutableSql: string
  /** Both key columns lead an index: counting unroutable rows is a cheap range read. */
  readonly keysIndexed: boolean
}

/** Reads the legacy columns and picks a hash every server of the fleet can compute. */
export async function prepareQueries(rt: Runtime, o: { concurrency?: number; hash?: HashFlavor } = {}): Promise<VerifyQueries> {
  const cfg = rt.config
  const columns = await readColumnInfo(rt.legacy(), cfg.legacy.database, cfg.legacy.table)
  for (const c of [cfg.legacy.primaryKey, cfg.legacy.userColumn, cfg.legacy.merchantColumn]) {
    if (!columns.some((x) => x.name === c)) throw new ShardkitError('CONFIG_INVALID', `column ${c} named in legacy is not in ${cfg.legacy.database}.${cfg.legacy.table}`, { column: c })
  }
  const flavor = o.hash ?? 'crc-pk'
  const hashSql = rowHashSql(columns, flavor, cfg.legacy.primaryKey)
  const keyCol = (name: string) => columns.find((c) => c.name === name)!
  const unroutable = [cfg.legacy.userColumn, cfg.legacy.merchantColumn]
    .map((n) => unroutableSql(quoteIdent(n), { nullable: keyCol(n).nullable, unsigned: keyCol(n).unsigned ?? false }))
    .filter(Boolean)
    .join(' OR ')
  const [lead] = await rt.legacy().query<RowDataPacket[]>(
    'SELECT DISTINCT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1 AND COLUMN_NAME IN (?, ?)',
    [cfg.legacy.database, cfg.legacy.table, cfg.legacy.userColumn, cfg.legacy.merchantColumn],
  )
  const pk = quoteIdent(cfg.legacy.primaryKey)
  const head = `SELECT ${pk} AS pk, ${quoteIdent(cfg.legacy.userColumn)} AS u, ${quoteIdent(cfg.legacy.merchantColumn)} AS m, ${hashSql} AS h FROM `
  return {
    hashSql,
    flavor,
    checksummer: new ChunkChecksummer(rt, hashSql, { concurrency: o.concurrency ?? 2, unroutable }),
    rowSelect: (table) => head + table,
    unroutableSql: unroutable,
    keysIndexed: lead.length === 2 || cfg.legacy.userColumn === cfg.legacy.merchantColumn,
  }
}

/** What every step of one verify run shares. */
interface Pass {
  readonly rt: Runtime
  readonly q: VerifyQueries
  /** The dimensions compared (both when legacy is retired). */
  readonly dims: readonly Dimension[]
  readonly ctx: DiffContext
  readonly st: RunState
  readonly record: (ds: Difference[]) => void
  readonly signal: AbortSignal | undefined
}

interface RunState {
  readonly found: Difference[]
  overflow: number
  readonly counts: { legacy: number; user: number; merchant: number }
  extraKeys: number
  chunks: number
  narrowed: number
}

/**
 * Runs a full verify. Expected outcomes (differences) are in the result, not thrown.
 * @throws ShardkitError `PRECONDITION_FAILED` when tables are missing
 */
export async function runVerify(rt: Runtime, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const dimension = opts.dimension ?? 'all'
  const pairs: Pair[] = opts.legacyRetired ? ['user-merchant'] : pairsFor(dimension)
  const started = new Date()
  const t0 = performance.now()
  const q = await prepareQueries(rt, { concurrency: opts.concurrency ?? 2, ...(opts.hash ? { hash: opts.hash } : {}) })
  const ctx: DiffContext = { ceiling: rt.config.legacy.idCeiling, pairs }
  const st: RunState = { found: [], overflow: 0, counts: { legacy: 0, user: 0, merchant: 0 }, extraKeys: 0, chunks: 0, narrowed: 0 }
  const maxDiffs = opts.maxDifferences ?? 100_000
  const record = (ds: Difference[]) => {
    for (const d of ds) {
      if (st.found.length < maxDiffs) st.found.push(d)
      else st.overflow++
    }
  }

  const dims: Dimension[] = dimension === 'all' || opts.legacyRetired ? ['user', 'merchant'] : [dimension]
  const pass: Pass = { rt, q, dims, ctx, st, record, signal: opts.signal }
  if (opts.legacyRetired) {
    await compareRows(pass, { lo: null, hi: null })
    st.chunks = 1
  } else {
    // Unroutable rows are left out of legacy's sums (no dimension holds them). When both key columns
    // are indexed, a cheap count says whether any exist, and the filter is skipped when none do.
    if (q.unroutableSql && q.keysIndexed && (await listUnroutable(rt, q, 0)).total === 0) q.checksummer.leaveOut('')
    let size = opts.chunkSize ?? 100_000
    // Chunks are key-value ranges (lo, hi] that tile the whole key space, sized from the
    // last chunk's count toward `size` rows: range sums need no boundary query and no
    // materialized LIMIT, so legacy is read once, like the dimensions.
    const bounds = await q.checksummer.legacyBounds()
    const max = bounds.max === null ? null : BigInt(bounds.max)
    let lo: bigint | null = null
    let base = bounds.min === null ? 0n : BigInt(bounds.min) - 1n
    let width = BigInt(size)
    // One chunk's dimension sums run while the next legacy range is summed.
    let pending: Promise<void> | undefined
    for (;;) {
      opts.signal?.throwIfAborted()
      if (opts.control) {
        // Job control: waits here while paused (after the chunk in flight is compared) or throttled.
        const next = await opts.control.betweenChunks(() => ({ rowsDone: st.counts.legacy, rowsTotal: null, chunks: st.chunks, chunkSize: size, concurrency: q.checksummer.concurrency }), () => pending ?? Promise.resolve())
        size = next.chunkSize ?? opts.chunkSize ?? 100_000
        q.checksummer.concurrency = next.concurrency ?? opts.concurrency ?? 2
        opts.signal?.throwIfAborted()
      }
      let hi: bigint | null = max === null ? null : base + width
      if (hi !== null && max !== null && hi >= max) hi = null
      const range: KeyRange = { lo: lo === null ? null : String(lo), hi: hi === null ? null : String(hi) }
      const l = await q.checksummer.legacySum(range)
      await pending
      pending = checkChunk(pass, range, l).then(() => {
        opts.onProgress?.({ rowsCompared: st.counts.legacy, chunks: st.chunks, chunksNarrowed: st.narrowed })
      })
      if (hi === null) break
      lo = hi
      base = hi
      if (l.count === 0) {
        // A gap in the keys (legacy ids end, new ids start far above): jump to the next key.
        const next = await q.checksummer.legacyKeyAfter(String(hi))
        if (next !== null) base = BigInt(next) - 1n
      } else {
        const scaled = (width * BigInt(size)) / BigInt(l.count)
        width = scaled > width * 4n ? width * 4n : scaled < width / 4n ? width / 4n : scaled
        if (width < 1n) width = 1n
      }
    }
    await pending
  }

  const settled = await settle(rt, st.found, q.hashSql, ctx, opts)
  // Unroutable rows do not settle: a dual write never makes one (the store refuses such keys).
  const unroutable = opts.legacyRetired ? { listed: [], total: 0 } : await listUnroutable(rt, q, Math.max(0, maxDiffs - settled.remaining.length))
  const remaining = [...settled.remaining, ...unroutable.listed]
  st.overflow += unroutable.total - unroutable.listed.length
  return { ...summarize({ dimension, started, t0, pairs, remaining, st, flavor: q.flavor }), journaled: settled.journaled, ...(unroutable.total > 0 ? { unroutable: unroutable.total } : {}) }
}

/** Legacy's rows that no key routes: up to `max` by key, and how many there are. */
export async function listUnroutable(rt: Runtime, q: Pick<VerifyQueries, 'unroutableSql'>, max: number): Promise<{ listed: Difference[]; total: number }> {
  if (!q.unroutableSql) return { listed: [], total: 0 }
  const cfg = rt.config
  const pk = quoteIdent(cfg.legacy.primaryKey)
  const table = qualified(cfg.legacy.database, cfg.legacy.table)
  const [[n]] = await rt.legacy().query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${q.unroutableSql}`)
  const total = Number(n!.n)
  if (total === 0 || max === 0) return { listed: [], total }
  const [rows] = await rt.legacy().query<RowDataPacket[]>(`SELECT ${pk} AS pk FROM ${table} WHERE ${q.unroutableSql} ORDER BY ${pk} LIMIT ${Math.floor(max)}`)
  return { listed: rows.map((r) => ({ pair: 'legacy-user' as const, kind: 'unroutable' as const, key: String(r.pk) })), total }
}

/**
 * The re-check rounds, then a bounded wait for keys the dual-write journal
 * still owes a copy (the drainer replays them) and one last comparison.
 */
export async function settle(
  rt: Runtime,
  found: Difference[],
  hashSql: string,
  ctx: DiffContext,
  opts: Pick<VerifyOptions, 'rounds' | 'roundDelayMs' | 'journalWaitMs' | 'signal'>,
): Promise<{ remaining: Difference[]; journaled: string[] }> {
  let remaining = found
  for (let r = 0; r < (opts.rounds ?? 3) && remaining.length > 0; r++) {
    await new Promise((res) => setTimeout(res, opts.roundDelayMs ?? 500))
    remaining = await recheck(rt, remaining, hashSql, ctx)
  }
  if (remaining.length === 0 || (opts.rounds ?? 3) === 0) return { remaining, journaled: [] }
  // Then, until nothing is owed or the wait is used up: wait for what the journal owes, and look
  // once more. The last look comes after a journal read that owed nothing, so a copy that was in
  // flight at the last round (its journal row gone since) is not reported as a difference.
  const deadline = Date.now() + (opts.journalWaitMs ?? 15_000)
  let still = new Set<string>()
  for (;;) {
    const owed = await journaledKeys(rt, [...new Set(remaining.map((d) => d.key))])
    if (owed.size > 0) still = await waitForJournal(rt, [...owed], Math.max(0, deadline - Date.now()), opts.signal)
    remaining = await recheck(rt, remaining, hashSql, ctx)
    if (remaining.length === 0 || owed.size === 0 || Date.now() >= deadline) break
  }
  return { remaining, journaled: remaining.filter((d) => still.has(d.key)).map((d) => d.key) }
}

/** Legacy rows under which a differing range is compared row by row instead of split again. */
const ROW_LEVEL_ROWS = 4000

async function checkChunk(pass: Pass, range: KeyRange, legacySum: SideSum): Promise<void> {
  const { q, dims, st } = pass
  let l = legacySum
  let sums = await Promise.all(dims.map((d) => q.checksummer.dimensionSum(d, range)))
  if (differs(l, sums)) {
    // A write in flight between the legacy read and the shard reads settles within milliseconds.
    await new Promise((res) => setTimeout(res, 50))
    ;[l, ...sums] = await Promise.all([q.checksummer.legacySum(range), ...dims.map((d) => q.checksummer.dimensionSum(d, range))])
  }
  st.chunks++
  const narrowed = differs(l, sums)
  if (narrowed) {
    st.narrowed++
    await narrow(pass, range, l.count)
  } else count(st, l, dims, sums)
  await phase('verify.chunk-compared', { lo: range.lo, hi: range.hi, narrowed })
}

function differs(l: SideSum, sums: SideSum[]): boolean {
  return l.badField > 0 || sums.some((s) => !sameRows(s, l) || s.misplaced > 0 || s.badField > 0)
}

function count(st: RunState, l: SideSum, dims: readonly Dimension[], sums: SideSum[]): void {
  st.counts.legacy += l.count
  dims.forEach((d, i) => (st.counts[d] += sums[i]!.count))
}

/** Splits a differing range into about ten parts, sums each, and goes down into those that differ. */
async function narrow(pass: Pass, range: KeyRange, legacyRows: number): Promise<void> {
  const { q, dims, st, signal } = pass
  if (legacyRows <= ROW_LEVEL_ROWS) return compareRows(pass, range)
  const size = Math.max(Math.ceil(legacyRows / 10), Math.ceil(ROW_LEVEL_ROWS / 2))
  let lo = range.lo
  for (;;) {
    signal?.throwIfAborted()
    const lc = await q.checksummer.legacyChunk(lo, size, range.hi)
    const sub: KeyRange = { lo, hi: lc.hi ?? range.hi }
    const sums = await Promise.all(dims.map((d) => q.checksummer.dimensionSum(d, sub)))
    if (!differs(lc.sum, sums)) count(st, lc.sum, dims, sums)
    else if (lc.rows >= legacyRows) await compareRows(pass, sub)
    else await narrow(pass, sub, lc.rows)
    if (lc.hi === null) return
    lo = lc.hi
  }
}

/** Compares a key range row by row: the sides' streams merged, each key compared once. */
async function compareRows(pass: Pass, range: KeyRange): Promise<void> {
  const { rt, q, dims, ctx, st, record, signal } = pass
  const cfg = rt.config
  const pk = quoteIdent(cfg.legacy.primaryKey)
  const retired = !ctx.pairs.includes('legacy-user') && !ctx.pairs.includes('legacy-merchant')
  const legacy = new MergedStream(retired ? [] : [new TableStream(rt.legacy(), q.rowSelect(qualified(cfg.legacy.database, cfg.legacy.table)), pk, -1, 5000, range)])
  const dimStream = (d: Dimension) =>
    dims.includes(d) ? new MergedStream(cfg.dimensions[d].shards.map((p) => new TableStream(rt.host(p.host), q.rowSelect(qualified(p.database, p.table)), pk, p.shard, 500, range))) : undefined
  const user = dimStream('user')
  const merchant = dimStream('merchant')
  for (;;) {
    signal?.throwIfAborted()
    const heads = [await legacy.peekMin(), await user?.peekMin(), await merchant?.peekMin()].filter((x): x is string => x !== undefined)
    if (heads.length === 0) break
    const key = heads.reduce((a, b) => (compareIds(a, b) <= 0 ? a : b))
    const l = legacy.take(key)[0]
    const u = user ? user.take(key) : []
    const m = merchant ? merchant.take(key) : []
    if (l) st.counts.legacy++
    else st.extraKeys++
    st.counts.user += u.length
    st.counts.merchant += m.length
    record(compareKey(key, l, u, m, ctx))
  }
}

function summarize(o: { dimension: Dimension | 'all'; started: Date; t0: number; pairs: Pair[]; remaining: Difference[]; st: RunState; flavor: HashFlavor }): VerifyResult {
  const byPair: Record<string, Partial<Record<DiffKind, number>>> = {}
  for (const d of o.remaining) {
    const p = (byPair[d.pair] ??= {})
    p[d.kind] = (p[d.kind] ?? 0) + 1
  }
  return {
    dimension: o.dimension,
    startedAt: o.started.toISOString(),
    finishedAt: new Date().toISOString(),
    rowsCompared: o.st.counts,
    keysCompared: o.st.counts.legacy + o.st.extraKeys,
    pairs: o.pairs,
    clean: o.remaining.length === 0 && o.st.overflow === 0,
    differences: o.remaining,
    overflow: o.st.overflow,
    byPair,
    seconds: (performance.now() - o.t0) / 1000,
    chunks: o.st.chunks,
    chunksNarrowed: o.st.narrowed,
    hash: o.flavor,
  }
}

/** Throws `INCONSISTENT` when a result is not clean (for callers that want an exception). */
export function assertClean(r: VerifyResult): void {
  if (!r.clean) {
    throw new ShardkitError('INCONSISTENT', `verify found ${r.differences.length + r.overflow} differing rows; run \`shardctl repair\` then \`shardctl verify\``, { differences: r.differences.length + r.overflow })
  }
}
