/**
 * The dual-write journal: `shardkit_journal` in every primary database.
 *
 * Shape ("intent" journal): every write that has secondaries inserts a
 * journal row in its primary transaction, before it can know whether the
 * secondaries will fail, so a crash or a dead secondary at any point leaves
 * the key behind. The write then replays itself (replay.ts) and deletes the
 * row in the same transaction that copied it; what remains is exactly the
 * set of orders whose secondaries may lag. Rows hold keys only.
 */
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import pLimit from 'p-limit'
import { ShardkitError } from '../errors.js'
import type { Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { poolFor, rowShape, withBoundedConnection } from './connections.js'
import { legacyLocation, primaryDatabases, shardLocation, type PrimaryDatabase, type Side } from './placement.js'
import { errorCode, JOURNAL_TABLE, PRIMARY_TIMEOUT_MS, replayOrder } from './replay.js'
import { phase } from '../runtime/phase-hooks.js'

export { JOURNAL_TABLE } from './replay.js'

/** One journal row as the primary transaction writes it. */
export interface JournalEntryInput {
  readonly orderId: string
  readonly op: 'insert' | 'update' | 'delete'
  readonly secondaries: readonly Side[]
  readonly userId: string
  readonly merchantId: string
  /** The merchant before a merchant change: its shard still holds a copy to delete. */
  readonly prevMerchantId?: string
}

/** Inserts a journal row on the primary transaction's connection; returns its id. */
export async function insertJournalEntry(conn: PoolConnection, database: string, e: JournalEntryInput): Promise<string> {
  const [res] = await conn.query<ResultSetHeader>(
    `INSERT INTO ${qualified(database, JOURNAL_TABLE)} (order_id, op, secondaries, user_id, merchant_id, prev_merchant_id) VALUES (?, ?, ?, ?, ?, ?)`,
    [e.orderId, e.op, e.secondaries.join(','), e.userId, e.merchantId, e.prevMerchantId ?? null],
  )
  return String(res.insertId)
}

/** One primary's journal. */
export interface PrimaryJournalStatus {
  readonly primary: string
  readonly side: 'legacy' | 'user'
  readonly depth: number
  /** Age of the oldest entry, by the primary server's clock; null when empty. */
  readonly oldestAgeMs: number | null
  /** Set when the journal could not be read (error code), or `NOT_PROVISIONED`. */
  readonly error?: string
}

const STATUS_TIMEOUT_MS = 5_000

/** Depth and oldest entry age of every primary's journal; unreachable primaries are reported, not thrown. */
export async function readJournalStatus(rt: Runtime, opts: { minAgeMs?: number } = {}): Promise<PrimaryJournalStatus[]> {
  const minAgeUs = Math.max(0, Math.round((opts.minAgeMs ?? 0) * 1000))
  const limit = pLimit(4)
  return Promise.all(
    primaryDatabases(rt.config).map((p) =>
      limit(async (): Promise<PrimaryJournalStatus> => {
        try {
          return await withBoundedConnection(poolFor(rt, p.host), p, STATUS_TIMEOUT_MS, async (c) => {
            const [rows] = await c.query<RowDataPacket[]>(
              `SELECT COUNT(*) AS n, TIMESTAMPDIFF(MICROSECOND, MIN(created_at), NOW(3)) AS age_us FROM ${qualified(p.database, JOURNAL_TABLE)}
                WHERE created_at <= NOW(3) - INTERVAL ? MICROSECOND`,
              [minAgeUs],
            )
            const r = rows[0]!
            return { primary: p.name, side: p.side, depth: Number(r.n), oldestAgeMs: r.age_us === null ? null : Math.max(0, Math.round(Number(r.age_us) / 1000)) }
          })
        } catch (err) {
          const code = errorCode(err)
          return { primary: p.name, side: p.side, depth: 0, oldestAgeMs: null, error: code === 'ER_NO_SUCH_TABLE' ? 'NOT_PROVISIONED' : code }
        }
      }),
    ),
  )
}

/**
 * Journal depth per primary (`legacy`, or `<host>/<database>`). With
 * `minAgeMs`, only entries older than that count: every write leaves an
 * intent entry for the few ms its secondaries take, so under traffic the
 * backlog that matters is what outlived its own write. A database
 * whose journal table does not exist counts 0 (nothing can have been
 * journaled there).
 * @throws ShardkitError `SHARD_FAILED` when a primary's journal cannot be read: an unknown depth is never reported as 0
 */
export async function readJournalDepth(rt: Runtime, opts: { minAgeMs?: number } = {}): Promise<{ total: number; byPrimary: Record<string, number> }> {
  const status = await readJournalStatus(rt, opts)
  const bad = status.filter((s) => s.error !== undefined && s.error !== 'NOT_PROVISIONED')
  if (bad.length > 0) {
    throw new ShardkitError('SHARD_FAILED', `cannot read the dual-write journal on ${bad.map((b) => b.primary).join(', ')}; bring the host back, then retry`, { primaries: bad.map((b) => b.primary) }, { retryable: true })
  }
  const byPrimary: Record<string, number> = {}
  for (const s of status) byPrimary[s.primary] = s.depth
  return { total: status.reduce((n, s) => n + s.depth, 0), byPrimary }
}

export interface DrainOptions {
  readonly signal?: AbortSignal
  readonly logger?: Logger
  /** Skip entries whose retry time has not come (the background drainer); the CLI tries everything. */
  readonly respectBackoff?: boolean
  /** Skip entries younger than this: their own write is still replaying them. Default 0. */
  readonly minAgeMs?: number
  /** Bound per secondary write (default 2000 ms). */
  readonly secondaryTimeoutMs?: number
  readonly backoff?: BackoffOptions
  readonly random?: () => number
  /** Entries read per query (default 200). */
  readonly batchSize?: number
  /** Orders replayed at once, over every primary (default 4; the switch's drain inside the fence uses 8). */
  readonly concurrency?: number
}

export interface DrainResult {
  /** Journal rows cleared. */
  readonly replayed: number
  /** Journal rows tried and left (a secondary still fails). */
  readonly failed: number
  /** Journal rows left after the pass, over the reachable primaries. */
  readonly remaining: number
  /** Primaries whose journal could not be read or replayed. */
  readonly unreachable: readonly string[]
}

interface EntryRow {
  id: string
  orderId: string
  secondaries: Side[]
  userId: string
  merchantId: string
  prevMerchantId: string | null
  attempts: number
}

/**
 * One pass over every primary's journal: each entry is tried at most once,
 * entries of the same order are replayed together. Safe to run while the
 * store writes and while another drainer runs (replays are idempotent).
 * @example const r = await drainJournal(rt, { signal }) // { replayed, failed, remaining }
 */
export async function drainJournal(rt: Runtime, opts: DrainOptions = {}): Promise<DrainResult> {
  const limit = pLimit(4)
  const replays = pLimit(opts.concurrency ?? 4)
  const results = await Promise.all(primaryDatabases(rt.config).map((p) => limit(() => drainPrimary(rt, p, opts, replays))))
  const out = { replayed: 0, failed: 0, remaining: 0, unreachable: [] as string[] }
  for (const r of results) {
    out.replayed += r.replayed
    out.failed += r.failed
    out.remaining += r.remaining
    if (r.unreachable) out.unreachable.push(r.primary)
  }
  return out
}

/** A connection to a primary's server, within PRIMARY_TIMEOUT_MS. */
async function acquirePrimary(rt: Runtime, p: PrimaryDatabase): Promise<PoolConnection> {
  const acquire = poolFor(rt, p.host).getConnection()
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    acquire,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        acquire.then((c) => c.release(), () => undefined)
        reject(new ShardkitError('SHARD_TIMEOUT', `primary ${p.name} did not answer`, { primary: p.name }))
      }, PRIMARY_TIMEOUT_MS)
    }),
  ]).finally(() => clearTimeout(timer))
}

async function drainPrimary(rt: Runtime, p: PrimaryDatabase, opts: DrainOptions, limit: ReturnType<typeof pLimit>): Promise<{ primary: string; replayed: number; failed: number; remaining: number; unreachable: boolean }> {
  const shape = await rowShape(rt)
  const log = opts.logger ?? rt.logger
  const journal = qualified(p.database, JOURNAL_TABLE)
  const deps = { rt, shape, timeoutMs: opts.secondaryTimeoutMs ?? 2_000, downHosts: new Set<string>(), hostTimeouts: new Map<string, number>() }
  let replayed = 0
  let failed = 0
  const pool = poolFor(rt, p.host)
  let conn: PoolConnection
  try {
    conn = await acquirePrimary(rt, p)
  } catch (err) {
    log.warn({ primary: p.name, code: errorCode(err) }, 'dual-write journal: primary unreachable')
    return { primary: p.name, replayed, failed, remaining: 0, unreachable: true }
  }
  try {
    let lastId = '0'
    for (;;) {
      opts.signal?.throwIfAborted()
      const conds = ['id > ?']
      const params: unknown[] = [lastId]
      if (opts.respectBackoff) conds.push('next_attempt_at <= NOW(3)')
      if (opts.minAgeMs) {
        conds.push('created_at <= NOW(3) - INTERVAL ? MICROSECOND')
        params.push(opts.minAgeMs * 1000)
      }
      params.push(opts.batchSize ?? 200)
      let rows: RowDataPacket[]
      try {
        ;[rows] = await conn.query<RowDataPacket[]>({
          timeout: PRIMARY_TIMEOUT_MS,
          sql: `SELECT id, order_id, secondaries, user_id, merchant_id, prev_merchant_id, attempts FROM ${journal} WHERE ${conds.join(' AND ')} ORDER BY id LIMIT ?`,
        }, params)
      } catch (err) {
        if (errorCode(err) === 'ER_NO_SUCH_TABLE') return { primary: p.name, replayed, failed, remaining: 0, unreachable: false }
        throw err
      }
      if (rows.length === 0) break
      lastId = String(rows[rows.length - 1]!.id)
      const byOrder = new Map<string, EntryRow[]>()
      for (const r of rows) {
        const e: EntryRow = {
          id: String(r.id),
          orderId: String(r.order_id),
          secondaries: String(r.secondaries).split(',').filter(Boolean) as Side[],
          userId: String(r.user_id),
          merchantId: String(r.merchant_id),
          prevMerchantId: r.prev_merchant_id === null ? null : String(r.prev_merchant_id),
          attempts: Number(r.attempts),
        }
        const list = byOrder.get(e.orderId) ?? []
        list.push(e)
        byOrder.set(e.orderId, list)
      }
      const replayOne = async (orderId: string, entries: EntryRow[]) => {
        const secondaries = [...new Set(entries.flatMap((e) => e.secondaries))]
        const journaled = entries.flatMap((e) => [{ userId: e.userId, merchantId: e.merchantId }, ...(e.prevMerchantId ? [{ userId: e.userId, merchantId: e.prevMerchantId }] : [])])
        const primaryLocation = p.side === 'legacy' ? legacyLocation(rt.config) : shardLocation(rt.config, 'user', entries[0]!.userId)
        const ids = entries.map((e) => e.id)
        const outcome = await replayOrder(deps, pool, { primary: p, primaryLocation, orderId, secondaries, journaled, journalIds: ids })
        if (outcome.ok) {
          replayed += ids.length
          await phase('drain.entry-replayed', { primary: p.name, orderId })
          return
        }
        failed += ids.length
        const attempts = Math.max(...entries.map((e) => e.attempts)) + 1
        const delayMs = backoffDelay(attempts, opts.backoff ?? DEFAULT_BACKOFF, opts.random)
        await pool.query({ sql: `UPDATE ${journal} SET attempts = attempts + 1, last_error = ?, next_attempt_at = NOW(3) + INTERVAL ? MICROSECOND WHERE id IN (?)`, timeout: PRIMARY_TIMEOUT_MS }, [
          outcome.failures[0]!.code.slice(0, 64),
          delayMs * 1000,
          ids,
        ])
        log.warn({ primary: p.name, orderId, failures: outcome.failures, attempts }, 'dual-write journal: replay failed; will retry')
      }
      // Orders are independent: replays run at once up to the pass's limit (shared by every
      // primary), none holding a connection between its statements (replayOrder), so they never
      // starve their own copies of connections.
      const settled = await Promise.allSettled(
        [...byOrder].map(([orderId, entries]) =>
          limit(async () => {
            opts.signal?.throwIfAborted()
            await replayOne(orderId, entries)
          }),
        ),
      )
      const bad = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (bad) throw bad.reason
    }
    const [[c]] = (await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${journal}`)) as unknown as [RowDataPacket[]]
    return { primary: p.name, replayed, failed, remaining: Number(c!.n), unreachable: false }
  } catch (err) {
    if ((err as Error)?.name === 'AbortError' || opts.signal?.aborted) throw err
    log.warn({ primary: p.name, code: errorCode(err) }, 'dual-write journal: drain of this primary stopped')
    return { primary: p.name, replayed, failed, remaining: 0, unreachable: true }
  } finally {
    conn.release()
  }
}
