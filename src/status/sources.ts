/**
 * The reads behind the status document, each bounded in time and each
 * reporting why it failed instead of throwing. They are shaped for speed on
 * a 2 x 120 fleet: one query per physical host covers the journal, outbox
 * and fence of every primary database on it; the control database answers
 * seven small queries at once; Redis three.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { isMissingTable } from '../runtime/mysql-errors.js'
import { poolFor } from '../dualwrite/connections.js'
import { primaryDatabases, type PrimaryDatabase } from '../dualwrite/placement.js'
import { JOURNAL_TABLE } from '../dualwrite/journal.js'
import { FENCE_TABLE } from '../cutover/fence.js'
import { AUDIT_TABLE } from '../cutover/switch-store.js'
import { OUTBOX_TABLE } from '../events/outbox.js'
import { VERIFY_RUN_TABLE } from '../verify/status.js'
import { JOB_PROGRESS_TABLE } from '../jobs/tables.js'
import type { RateSample } from '../jobs/rate.js'

/** A read that either answered or says why not. */
export type Read<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string }

/** The code of a driver or Redis error (`ECONNREFUSED`, `ER_NO_SUCH_TABLE`, `TIMEOUT`). */
export function codeOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown }
  if (typeof e?.code === 'string' && e.code) return e.code
  if (typeof e?.message === 'string' && /timed out|did not answer/.test(e.message)) return 'TIMEOUT'
  return typeof e?.message === 'string' ? e.message.slice(0, 80) : 'UNKNOWN'
}

/** Runs `fn` within `ms`; a read that takes longer counts as failed with code TIMEOUT. */
export async function bounded<T>(ms: number, fn: () => Promise<T>): Promise<Read<T>> {
  let timer: NodeJS.Timeout | undefined
  try {
    const value = await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`did not answer within ${ms} ms`), { code: 'TIMEOUT' })), ms)
      }),
    ])
    return { ok: true, value }
  } catch (err) {
    return { ok: false, error: codeOf(err) }
  } finally {
    clearTimeout(timer)
  }
}

/** One primary database's journal, outbox and fence, as read. */
export interface PrimaryReading {
  readonly primary: PrimaryDatabase
  readonly journal: { depth: number; oldestAgeMs: number | null } | null
  readonly outbox: { depth: number; oldestAgeMs: number | null; publishedLastMinute: number } | null
  readonly fence: { state: 'open' | 'raised' | 'missing' | 'unreachable'; version: number | null }
  /** `NOT_PROVISIONED` for a missing table, else the driver's code when the host did not answer. */
  readonly error: string | null
}

function primarySelect(p: PrimaryDatabase, tables: { journal: boolean; outbox: boolean; fence: boolean }): { sql: string; params: unknown[] } {
  const j = qualified(p.database, JOURNAL_TABLE)
  const o = qualified(p.database, OUTBOX_TABLE)
  const f = qualified(p.database, FENCE_TABLE)
  const cols = [
    tables.journal ? `(SELECT COUNT(*) FROM ${j}) AS jn, (SELECT TIMESTAMPDIFF(MICROSECOND, MIN(created_at), NOW(3)) FROM ${j}) AS jage` : 'NULL AS jn, NULL AS jage',
    tables.outbox
      ? `(SELECT COUNT(*) FROM ${o} WHERE published_at IS NULL) AS obn, (SELECT TIMESTAMPDIFF(MICROSECOND, occurred_at, NOW(3)) FROM ${o} WHERE published_at IS NULL ORDER BY id LIMIT 1) AS obage, (SELECT COUNT(*) FROM ${o} WHERE published_at >= NOW(3) - INTERVAL 60 SECOND) AS obpub`
      : 'NULL AS obn, NULL AS obage, NULL AS obpub',
    tables.fence ? `(SELECT state FROM ${f} WHERE id = 1) AS fstate, (SELECT stage_version FROM ${f} WHERE id = 1) AS fver` : "'missing' AS fstate, NULL AS fver",
  ]
  return { sql: `SELECT ? AS name, ${cols.join(', ')}`, params: [p.name] }
}

function toReading(p: PrimaryDatabase, r: RowDataPacket, missing: string | null): PrimaryReading {
  const ms = (us: unknown) => (us === null || us === undefined ? null : Math.max(0, Math.round(Number(us) / 1000)))
  return {
    primary: p,
    journal: r.jn === null ? null : { depth: Number(r.jn), oldestAgeMs: ms(r.jage) },
    outbox: r.obn === null ? null : { depth: Number(r.obn), oldestAgeMs: ms(r.obage), publishedLastMinute: Number(r.obpub) },
    fence: r.fstate === null || r.fstate === 'missing' ? { state: 'missing', version: null } : { state: r.fstate === 'open' ? 'open' : 'raised', version: Number(r.fver) },
    error: missing,
  }
}

/** One database alone, each table tried on its own (some not provisioned). */
async function readOnePrimary(rt: Runtime, p: PrimaryDatabase): Promise<PrimaryReading> {
  const pool = poolFor(rt, p.host)
  const tables = { journal: true, outbox: true, fence: true }
  for (const t of ['journal', 'outbox', 'fence'] as const) {
    const only = { journal: t === 'journal', outbox: t === 'outbox', fence: t === 'fence' }
    const q = primarySelect(p, only)
    try {
      await pool.query(q.sql, q.params)
    } catch (err) {
      if (!isMissingTable(err)) throw err
      tables[t] = false
    }
  }
  const q = primarySelect(p, tables)
  const [rows] = await pool.query<RowDataPacket[]>(q.sql, q.params)
  const missing = Object.entries(tables).filter(([, ok]) => !ok).map(([t]) => t)
  return toReading(p, rows[0]!, missing.length ? 'NOT_PROVISIONED' : null)
}

/**
 * Journal, outbox and fence of every primary database, one query per host.
 * A host that does not answer marks its primaries with the error code.
 */
export async function readPrimaries(rt: Runtime, timeoutMs: number): Promise<PrimaryReading[]> {
  const byHost = new Map<string, PrimaryDatabase[]>()
  for (const p of primaryDatabases(rt.config)) {
    const list = byHost.get(p.host) ?? []
    list.push(p)
    byHost.set(p.host, list)
  }
  const all = { journal: true, outbox: true, fence: true }
  const groups = await Promise.all(
    [...byHost].map(async ([host, list]): Promise<PrimaryReading[]> => {
      const r = await bounded(timeoutMs, async () => {
        const parts = list.map((p) => primarySelect(p, all))
        try {
          const [rows] = await poolFor(rt, host).query<RowDataPacket[]>(parts.map((x) => `(${x.sql})`).join(' UNION ALL '), parts.flatMap((x) => x.params))
          const byName = new Map(rows.map((row) => [String(row.name), row]))
          return list.map((p) => toReading(p, byName.get(p.name)!, null))
        } catch (err) {
          if (!isMissingTable(err)) throw err
          // Some database lacks a table: read them one by one to say which.
          return Promise.all(list.map((p) => readOnePrimary(rt, p)))
        }
      })
      if (r.ok) return r.value
      return list.map((p) => ({ primary: p, journal: null, outbox: null, fence: { state: 'unreachable' as const, version: null }, error: r.error }))
    }),
  )
  return groups.flat()
}

/** Answers of `SELECT 1` per config host that holds no primary (merchant-only hosts). */
export async function pingHosts(rt: Runtime, hosts: readonly string[], timeoutMs: number): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>()
  await Promise.all(
    hosts.map(async (h) => {
      const r = await bounded(timeoutMs, () => rt.host(h).query('SELECT 1'))
      out.set(h, r.ok ? null : r.error)
    }),
  )
  return out
}

/** The last completed move that changed the stage (not a ramp step): where it went, who, when. */
export async function readLastStageChange(rt: Runtime): Promise<{ toStage: string; actor: string; at: string } | null> {
  try {
    const [rows] = await rt.control().query<RowDataPacket[]>(
      `SELECT to_stage, actor, DATE_FORMAT(at, '%Y-%m-%dT%H:%i:%s.%fZ') AS at FROM ${qualified(rt.config.control.database, AUDIT_TABLE)}
        WHERE outcome = 'done' AND to_stage IS NOT NULL AND from_stage <> to_stage ORDER BY id DESC LIMIT 1`,
    )
    const r = rows[0]
    return r ? { toStage: String(r.to_stage), actor: String(r.actor), at: isoMs(String(r.at)) } : null
  } catch (err) {
    if (isMissingTable(err)) return null
    throw err
  }
}

/** `2026-01-01T00:00:00.123000Z` (DATE_FORMAT %f is microseconds) -> `...00.123Z`. */
function isoMs(s: string): string {
  return s.replace(/\.(\d{3})\d*Z$/, '.$1Z')
}

/** A job's progress row. */
export interface JobProgressRow {
  readonly job: 'backfill' | 'verify'
  readonly runId: string
  readonly scope: string
  readonly state: string
  readonly host: string
  readonly pid: number
  readonly startedAt: string
  readonly updatedAt: string
  readonly reportAgeMs: number
  readonly finishedAt: string | null
  readonly rowsDone: number
  readonly rowsTotal: number | null
  readonly chunks: number
  readonly chunkSize: number | null
  readonly concurrency: number | null
  readonly maxRowsPerSecond: number | null
  readonly samples: RateSample[]
  readonly message: string | null
}

/** Both jobs' progress rows (the control server's clock for the report age). */
export async function readJobProgress(rt: Runtime): Promise<Map<string, JobProgressRow>> {
  const out = new Map<string, JobProgressRow>()
  let rows: RowDataPacket[]
  try {
    ;[rows] = await rt.control().query<RowDataPacket[]>(
      `SELECT job, run_id, scope, state, host, pid, DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS started, DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS updated,
              DATE_FORMAT(finished_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS finished, TIMESTAMPDIFF(MICROSECOND, updated_at, UTC_TIMESTAMP(3)) AS age_us,
              rows_done, rows_total, chunks, chunk_size, concurrency, max_rows_per_second, samples, message
         FROM ${qualified(rt.config.control.database, JOB_PROGRESS_TABLE)}`,
    )
  } catch (err) {
    if (isMissingTable(err)) return out
    throw err
  }
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v))
  for (const r of rows) {
    let samples: RateSample[] = []
    try {
      const parsed = JSON.parse(String(r.samples)) as unknown
      if (Array.isArray(parsed)) samples = parsed.filter((s): s is RateSample => Array.isArray(s) && typeof s[0] === 'number' && typeof s[1] === 'number')
    } catch {
      // a malformed sample list only costs the rate
    }
    out.set(String(r.job), {
      job: r.job,
      runId: String(r.run_id),
      scope: String(r.scope),
      state: String(r.state),
      host: String(r.host),
      pid: Number(r.pid),
      startedAt: isoMs(String(r.started)),
      updatedAt: isoMs(String(r.updated)),
      reportAgeMs: Math.max(0, Math.round(Number(r.age_us) / 1000)),
      finishedAt: r.finished === null ? null : isoMs(String(r.finished)),
      rowsDone: Number(r.rows_done),
      rowsTotal: n(r.rows_total),
      chunks: Number(r.chunks),
      chunkSize: n(r.chunk_size),
      concurrency: n(r.concurrency),
      maxRowsPerSecond: n(r.max_rows_per_second),
      samples,
      message: r.message === null ? null : String(r.message),
    })
  }
  return out
}

/** A verify run as recorded, with what status needs from its summary. */
export interface VerifyRunRow {
  readonly runId: string
  readonly dimension: string
  readonly since: string | null
  readonly startedAt: string
  readonly finishedAt: string
  readonly clean: boolean
  readonly differences: number
  readonly rowsCompared: number
  readonly pairs: readonly string[] | null
  readonly byPair: Record<string, Record<string, number>> | null
  readonly byShard: { user: Record<string, number>; merchant: Record<string, number> } | null
}

/** The most recent verify runs (newest first), enough to find the last one of each pair. */
export async function readRecentVerifyRuns(rt: Runtime, limit = 30): Promise<VerifyRunRow[]> {
  let rows: RowDataPacket[]
  try {
    ;[rows] = await rt.control().query<RowDataPacket[]>(
      `SELECT run_id, dimension, since_time, DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS started, DATE_FORMAT(finished_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS finished,
              clean, differences, rows_compared, summary
         FROM ${qualified(rt.config.control.database, VERIFY_RUN_TABLE)} ORDER BY finished_at DESC LIMIT ?`,
      [limit],
    )
  } catch (err) {
    if (isMissingTable(err)) return []
    throw err
  }
  return rows.map((r) => {
    let summary: Record<string, unknown> = {}
    try {
      summary = JSON.parse(String(r.summary)) as Record<string, unknown>
    } catch {
      // an unreadable summary leaves the per-pair and per-shard figures unknown
    }
    return {
      runId: String(r.run_id),
      dimension: String(r.dimension),
      since: r.since_time === null ? null : String(r.since_time),
      startedAt: isoMs(String(r.started)),
      finishedAt: isoMs(String(r.finished)),
      clean: Number(r.clean) === 1,
      differences: Number(r.differences),
      rowsCompared: Number(r.rows_compared),
      pairs: Array.isArray(summary.pairs) ? (summary.pairs as string[]) : null,
      byPair: summary.byPair && typeof summary.byPair === 'object' ? (summary.byPair as Record<string, Record<string, number>>) : null,
      byShard: summary.byShard && typeof summary.byShard === 'object' ? (summary.byShard as { user: Record<string, number>; merchant: Record<string, number> }) : null,
    }
  })
}
