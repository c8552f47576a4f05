/**
 * The backfill copier: reads legacy in primary-key chunks (keyset, never
 * OFFSET), routes each row in the client to its shard in each dimension, and
 * writes one multi-row statement per target table.
 *
 * The rule that keeps it safe beside live dual writes: each chunk is read in
 * a legacy transaction with `LOCK IN SHARE MODE`, held until the targets have
 * committed, and written with `INSERT IGNORE`, which never overwrites a row.
 * A dual write changes legacy first (it waits for the chunk's shared locks,
 * so it lands after the copy) and then upserts the shards with the newer
 * version; a row already in a shard came from a dual write and is at least as
 * new as legacy was when the chunk was read. A row deleted in legacy before
 * the read is not copied; one deleted after waits for the lock and is then
 * deleted from the shards by the same dual write.
 *
 * Checkpoints are saved after the targets commit; a crash re-copies at most
 * one chunk, which INSERT IGNORE makes harmless. The copy ends at the highest
 * key legacy held when it started: later orders are the dual writes' to copy.
 */
import pLimit from 'p-limit'
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import { routeKey, type Dimension, type UnroutableReason } from '../router/shard-function.js'
import { exactReads, readColumnKinds, selectListSql } from '../dualwrite/column-kinds.js'
import { compareIds } from '../idgen/layout.js'
import { completeCheckpoint, readCheckpoints, resetCheckpoint, saveCheckpoint } from './checkpoints.js'
import { nextChunkSize } from './plan.js'
import { phase } from '../runtime/phase-hooks.js'
import { sleep } from '../runtime/sleep.js'
import { belowTombstone, tombstonedIds } from '../dualwrite/tombstones.js'
import { VERSION_COLUMN } from '../dualwrite/row-sql.js'
import { assertBackfillStage } from '../cutover/guards.js'
import { readStageState } from '../cutover/switch-store.js'
import type { ChunkGate } from '../jobs/control.js'

export interface BackfillOptions {
  readonly dimensions?: readonly Dimension[]
  /** Rows per chunk, or 'auto' to tune toward `targetChunkMs` (default 'auto'). */
  readonly chunkSize?: number | 'auto'
  readonly targetChunkMs?: number
  readonly maxRowsPerSecond?: number
  /** Parallel target writes per chunk (default 4). */
  readonly concurrency?: number
  /** Start over instead of resuming. */
  readonly restart?: boolean
  readonly signal?: AbortSignal
  readonly onProgress?: (p: BackfillProgress) => void
  /** Job control (pause/resume/throttle from the control database, src/jobs); it then owns the rows/s limit. */
  readonly control?: ChunkGate
}

export interface BackfillProgress {
  readonly rowsDone: number
  readonly rowsTotal: number
  readonly rowsPerSecond: number
  readonly chunkSize: number
  readonly lastPk: string | null
}

/** A legacy row no key routes: it is copied nowhere, and named here. */
export interface UnroutableRow {
  /** Its primary key. */
  readonly key: string
  /** The key column that has no shard. */
  readonly column: string
  readonly reason: UnroutableReason
}

/** Unroutable rows kept by key in a result; more are counted only. */
export const MAX_UNROUTABLE_LISTED = 1000

export interface BackfillResult {
  readonly dimensions: readonly Dimension[]
  /** Rows copied in this run (rows read, less those in `unroutable`). */
  readonly rowsCopied: number
  readonly rowsTotal: number
  readonly chunks: number
  readonly seconds: number
  readonly rowsPerSecond: number
  readonly resumedFrom: string | null
  /** False when stopped by the signal (at a checkpoint). */
  readonly completed: boolean
  /**
   * Rows read in this run whose user or merchant key has no shard (NULL, or
   * negative): not copied (nothing routes them, and the row is copied to both
   * dimensions or to neither), counted, and the first
   * {@link MAX_UNROUTABLE_LISTED} named by key. Verify reports them too, so
   * the cutover cannot pass them by: fix their keys in legacy, then run the
   * backfill again with `restart` (it copies them and records their routes).
   */
  readonly unroutable: { readonly rows: number; readonly listed: readonly UnroutableRow[] }
}

/** The legacy table's columns in order (the shard tables have the same ones). */
export async function legacyColumns(rt: Runtime): Promise<string[]> {
  const { database, table } = rt.config.legacy
  const [rows] = await rt.legacy().query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [database, table],
  )
  if (rows.length === 0) throw new ShardkitError('PRECONDITION_FAILED', `the legacy table ${database}.${table} does not exist; check the config`, { database, table })
  return rows.map((r) => r.c as string)
}

/**
 * Copies legacy into the shard tables of the given dimensions, resuming from
 * the last checkpoint unless `restart`.
 * @throws ShardkitError `PRECONDITION_FAILED` when the legacy table or control tables are missing
 */
export async function runBackfill(rt: Runtime, opts: BackfillOptions = {}): Promise<BackfillResult> {
  const cfg = rt.config
  const dims = opts.dimensions ?? (['user', 'merchant'] as const)
  const { columns, kinds } = await readColumnKinds(rt.legacy(), cfg.legacy.database, cfg.legacy.table)
  if (columns.length === 0) throw new ShardkitError('PRECONDITION_FAILED', `the legacy table ${cfg.legacy.database}.${cfg.legacy.table} does not exist; check the config`, { database: cfg.legacy.database, table: cfg.legacy.table })
  const pk = cfg.legacy.primaryKey
  for (const c of [pk, cfg.legacy.userColumn, cfg.legacy.merchantColumn]) {
    if (!columns.includes(c)) throw new ShardkitError('CONFIG_INVALID', `column ${c} named in legacy is not in ${cfg.legacy.database}.${cfg.legacy.table}`, { column: c })
  }
  const control = rt.control()
  const cdb = cfg.control.database
  let cps = await readCheckpoints(control, cdb)
  // Resume from the smallest checkpoint of the dimensions asked for: one pass serves all of them.
  for (const d of dims) if (opts.restart || !cps.has(d)) await resetCheckpoint(control, cdb, d)
  cps = await readCheckpoints(control, cdb)
  const pending = dims.filter((d) => cps.get(d)!.state !== 'complete')
  const starts = pending.map((d) => cps.get(d)!.lastPk)
  const resumedFrom = starts.includes(null) ? null : (starts as string[]).sort(compareIds)[0]!
  const legacyTable = qualified(cfg.legacy.database, cfg.legacy.table)
  const [[countRow]] = await rt.legacy().query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${legacyTable}`)
  const rowsTotal = Number(countRow!.n)
  // The copy ends at the highest key legacy holds now: every order written after this runs
  // through the dual-write store (the stage is at least dual-write), so chasing new rows
  // would never end under steady inserts and copy nothing the dual writes did not.
  const [[maxRow]] = await rt.legacy().query<RowDataPacket[]>(`SELECT MAX(${quoteIdent(pk)}) AS m FROM ${legacyTable}`)
  const endPk: string | null = maxRow!.m === null ? null : String(maxRow!.m)
  const [[doneRow]] = resumedFrom === null ? [[{ n: 0 }]] : await rt.legacy().query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${legacyTable} WHERE ${quoteIdent(pk)} <= ?`, [resumedFrom])

  const colList = columns.map(quoteIdent).join(',')
  // FLOAT and GEOMETRY are read through expressions that keep every bit (column-kinds.ts).
  const readList = selectListSql(columns, exactReads(kinds))
  const unroutable: { rows: number; listed: UnroutableRow[] } = { rows: 0, listed: [] }
  const rowPh = `(${columns.map(() => '?').join(',')})`
  let fixed = typeof opts.chunkSize === 'number' ? opts.chunkSize : undefined
  let chunkSize = fixed ?? 1000
  const limit = pLimit(opts.concurrency ?? 4)
  const t0 = performance.now()
  let rowsDone = Number(doneRow!.n)
  let copied = 0
  let chunks = 0
  let lastPk = resumedFrom
  let completed = false

  if (pending.length === 0) completed = true
  // Chunk k+1 is read (under its own shared locks) while chunk k is written;
  // chunk k's targets commit and its checkpoint is saved before chunk k+1 is written.
  let readPk = lastPk
  let previous: Promise<void> | undefined
  const finish = async (conn: PoolConnection, rows: RowDataPacket[], tChunk: number) => {
    const before = unroutable.rows
    try {
      // A switch to write-shards may overtake a running copy: stop at the last checkpoint.
      assertBackfillStage(await readStageState(rt))
      await writeChunk(rt, rows, columns, colList, rowPh, pending, limit, limit.concurrency, unroutable)
      await conn.commit()
    } catch (err) {
      await conn.rollback().catch(() => undefined)
      throw err
    } finally {
      conn.release()
    }
    const last = String(rows[rows.length - 1]![pk])
    await phase('backfill.chunk-committed', { lastPk: last, rows: rows.length })
    await saveCheckpoint(control, cdb, pending, last, rows.length)
    await phase('backfill.checkpoint-saved', { lastPk: last })
    lastPk = last
    chunks++
    copied += rows.length - (unroutable.rows - before)
    rowsDone += rows.length
    if (fixed === undefined) chunkSize = nextChunkSize(chunkSize, performance.now() - tChunk, opts.targetChunkMs ?? 500)
    const elapsed = (performance.now() - t0) / 1000
    if (!opts.control && opts.maxRowsPerSecond && copied / elapsed > opts.maxRowsPerSecond) {
      await sleep((copied / opts.maxRowsPerSecond - elapsed) * 1000, opts.signal)
    }
    opts.onProgress?.({ rowsDone, rowsTotal, rowsPerSecond: copied / Math.max(0.001, (performance.now() - t0) / 1000), chunkSize, lastPk })
  }
  try {
    while (!completed) {
      if (opts.signal?.aborted) break
      if (opts.control) {
        // Job control: waits here while paused (after the chunk in flight commits) or throttled.
        const next = await opts.control.betweenChunks(() => ({ rowsDone, rowsTotal, chunks, chunkSize, concurrency: limit.concurrency }), () => previous ?? Promise.resolve())
        fixed = next.chunkSize ?? (typeof opts.chunkSize === 'number' ? opts.chunkSize : undefined)
        if (fixed !== undefined) chunkSize = fixed
        limit.concurrency = next.concurrency ?? opts.concurrency ?? 4
        if (opts.signal?.aborted) break
      }
      const conn: PoolConnection = await rt.legacy().getConnection()
      let rows: RowDataPacket[]
      try {
        await conn.beginTransaction()
        const conds = [...(readPk === null ? [] : [`${quoteIdent(pk)} > ?`]), `${quoteIdent(pk)} <= ?`]
        const params = [...(readPk === null ? [] : [readPk]), endPk ?? '0']
        ;[rows] =
          endPk === null
            ? [[]]
            : await conn.query<RowDataPacket[]>(`SELECT ${readList} FROM ${legacyTable} WHERE ${conds.join(' AND ')} ORDER BY ${quoteIdent(pk)} LIMIT ${chunkSize} LOCK IN SHARE MODE`, params)
        await previous
      } catch (err) {
        await conn.rollback().catch(() => undefined)
        conn.release()
        throw err
      }
      previous = undefined
      if (rows.length === 0 || opts.signal?.aborted) {
        await conn.rollback().catch(() => undefined)
        conn.release()
        if (rows.length === 0) {
          await completeCheckpoint(control, cdb, pending)
          completed = true
        }
        break
      }
      readPk = String(rows[rows.length - 1]![pk])
      previous = finish(conn, rows, performance.now())
      // A failed chunk is reported by the next await; keep it from being unhandled meanwhile.
      previous.catch(() => undefined)
    }
  } finally {
    await previous?.catch(() => undefined)
  }
  await previous
  const seconds = (performance.now() - t0) / 1000
  return { dimensions: dims, rowsCopied: copied, rowsTotal, chunks, seconds, rowsPerSecond: copied / Math.max(0.001, seconds), resumedFrom, completed, unroutable }
}

async function writeChunk(
  rt: Runtime,
  rows: RowDataPacket[],
  columns: string[],
  colList: string,
  rowPh: string,
  dims: readonly Dimension[],
  limit: ReturnType<typeof pLimit>,
  buckets: number,
  unroutable: { rows: number; listed: UnroutableRow[] },
): Promise<void> {
  const cfg = rt.config
  const groups = new Map<string, Group>()
  const routed: RowDataPacket[] = []
  for (const row of rows) {
    // Both keys are routed first: a row goes to both dimensions or, when a key has no shard, to neither.
    const u = routeKey(row[cfg.legacy.userColumn])
    const m = routeKey(row[cfg.legacy.merchantColumn])
    if (!('shard' in u) || !('shard' in m)) {
      unroutable.rows++
      if (unroutable.listed.length < MAX_UNROUTABLE_LISTED) {
        const [column, why] = 'reason' in u ? [cfg.legacy.userColumn, u.reason] : [cfg.legacy.merchantColumn, (m as { reason: UnroutableReason }).reason]
        unroutable.listed.push({ key: String(row[cfg.legacy.primaryKey]), column, reason: why })
      }
      continue
    }
    routed.push(row)
    for (const d of dims) {
      const p = cfg.dimensions[d].shards[d === 'user' ? u.shard : m.shard]!
      const id = `${p.host}/${p.database}/${p.table}`
      let g = groups.get(id)
      if (!g) groups.set(id, (g = { pool: rt.host(p.host), database: p.database, tableName: p.table, table: qualified(p.database, p.table), rows: [], keys: [] }))
      g.rows.push(columns.map((c) => row[c]))
      g.keys.push({ id: String(row[cfg.legacy.primaryKey]), version: String(row[VERSION_COLUMN] ?? 0) })
    }
  }
  // Each host's tables are split over up to `concurrency` connections, one transaction each:
  // one commit (one redo flush) per bucket instead of one per shard table.
  const byHost = new Map<Pool, Group[]>()
  for (const g of groups.values()) {
    let list = byHost.get(g.pool)
    if (!list) byHost.set(g.pool, (list = []))
    list.push(g)
  }
  const writes: Promise<unknown>[] = []
  for (const [pool, list] of byHost) {
    const n = Math.min(buckets, list.length)
    for (let b = 0; b < n; b++) writes.push(limit(() => insertInOneTransaction(pool, list.filter((_, i) => i % n === b), colList, rowPh)))
  }
  // Legacy ids route through order_lookup; new ids carry their shard and need none.
  const lookups = routed.filter((r) => compareIds(String(r[cfg.legacy.primaryKey]), cfg.legacy.idCeiling) <= 0)
  if (lookups.length > 0) {
    const vals: unknown[] = []
    for (const r of lookups) vals.push(r[cfg.legacy.primaryKey], r[cfg.legacy.userColumn], r[cfg.legacy.merchantColumn])
    writes.push(
      limit(() =>
        rt.control().query(
          `INSERT INTO ${qualified(cfg.control.database, 'order_lookup')} (order_id, user_id, merchant_id) VALUES ${new Array(lookups.length).fill('(?,?,?)').join(',')}
           ON DUPLICATE KEY UPDATE user_id = VALUES(user_id), merchant_id = VALUES(merchant_id)`,
          vals,
        ),
      ),
    )
  }
  await Promise.all(writes)
}

interface Group {
  readonly pool: Pool
  readonly database: string
  readonly tableName: string
  readonly table: string
  readonly rows: unknown[][]
  readonly keys: { id: string; version: string }[]
}

/**
 * The groups' multi-row INSERT IGNOREs on one connection, committed together.
 * Rows a tombstone keeps out (the order was deleted, or moved away, after the
 * chunk was read) are left out; the tombstones are read under a shared lock
 * in the same transaction, so a delete cannot slip one in before it commits.
 */
async function insertInOneTransaction(pool: Pool, list: readonly Group[], colList: string, rowPh: string): Promise<void> {
  const conn = await pool.getConnection()
  try {
    await conn.beginTransaction()
    const tombs = new Map<string, Map<string, Map<string, string>>>()
    for (const db of new Set(list.map((g) => g.database))) {
      const ids = [...new Set(list.filter((g) => g.database === db).flatMap((g) => g.keys.map((k) => k.id)))]
      tombs.set(db, await tombstonedIds(conn, db, ids))
    }
    for (const g of list) {
      const t = tombs.get(g.database)!
      const values: unknown[] = []
      let n = 0
      g.rows.forEach((r, i) => {
        const k = g.keys[i]!
        const stone = t.get(k.id)?.get(g.tableName)
        if (stone !== undefined && belowTombstone(k.version, stone)) return
        for (const v of r) values.push(v)
        n++
      })
      if (n > 0) await conn.query(`INSERT IGNORE INTO ${g.table} (${colList}) VALUES ${new Array(n).fill(rowPh).join(',')}`, values)
    }
    await conn.commit()
  } catch (err) {
    await conn.rollback().catch(() => undefined)
    throw err
  } finally {
    conn.release()
  }
}
