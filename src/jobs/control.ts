/**
 * Job control for a running backfill or verify: the job calls
 * `betweenChunks()` before it reads each chunk, and the gate applies what the
 * operator set in the control database (src/jobs/settings.ts):
 *
 * - **pause**: the gate first lets the chunk in flight commit (`settle`),
 *   so a paused job holds no row lock and no open transaction, then waits,
 *   looking at the settings every `pollMs`, until resumed or stopped;
 * - **throttle**: rows/s are held to the limit measured since the limit was
 *   set (not over the whole run, which would stall a job that ran fast
 *   before); the wait is cut in slices so a pause or a new limit acts at once;
 * - **chunk size / concurrency**: returned to the job for its next chunk.
 *
 * The settings are read at most every `pollMs` (200 ms), so a change acts at
 * the next chunk within a second. Each change is logged old -> new. The gate
 * also reports the job's progress (`shardkit_job_progress`) at most once a
 * second, which is what `shardctl status` shows, and it never fails the job
 * because the control database did not answer one read: it keeps the last
 * settings it saw and says so in the log.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Runtime } from '../runtime/runtime.js'
import type { Logger } from '../runtime/logger.js'
import { qualified } from '../runtime/mysql.js'
import { sleep } from '../runtime/sleep.js'
import { changeJobSettings, jobTablesMissing, readJobSettings, type JobKind, type JobSettings } from './settings.js'
import { isMissingTable } from '../runtime/mysql-errors.js'
import { JOB_PROGRESS_TABLE } from './tables.js'
import { trimSamples, type RateSample } from './rate.js'

/** What the job knows at a chunk boundary. */
export interface ChunkProgress {
  readonly rowsDone: number
  /** Exact total (counted over the key range), or null when the job cannot know it. */
  readonly rowsTotal: number | null
  readonly chunks: number
  readonly chunkSize: number
  readonly concurrency: number
}

/** Settings for the job's next chunk; null fields mean "keep your own". */
export interface NextChunkSettings {
  readonly chunkSize: number | null
  readonly concurrency: number | null
  readonly maxRowsPerSecond: number | null
}

/** What a job needs from job control (the copier and the differ take this). */
export interface ChunkGate {
  /**
   * Waits while paused or throttled, then returns the settings for the next chunk.
   * @param progress the job's current figures (read again after each wait)
   * @param settle resolves once the chunk in flight has committed (called before a pause)
   */
  betweenChunks(progress: () => ChunkProgress, settle?: () => Promise<unknown>): Promise<NextChunkSettings>
}

/** Things the gate tells its caller about (notifications). */
export type JobNotice = { readonly kind: 'paused' | 'resumed'; readonly job: JobKind } | { readonly kind: 'throttled-long'; readonly job: JobKind; readonly minutes: number; readonly maxRowsPerSecond: number }

/** Options of {@link openJobControl}. */
export interface JobControlOptions {
  /** What the job covers, e.g. `user+merchant` or `all` (shown by status). */
  readonly scope: string
  readonly logger?: Logger
  /** Stops a pause or a throttle wait (the job then stops at its checkpoint). */
  readonly signal?: AbortSignal
  /** How often the settings are read (default 200 ms). */
  readonly pollMs?: number
  /** How often progress is written (default 1000 ms). */
  readonly reportMs?: number
  /** Settings given on the job's command line: written to the control database at start (logged old -> new). */
  readonly initial?: { readonly maxRowsPerSecond?: number | null; readonly chunkSize?: number | null; readonly concurrency?: number | null }
  /** Notifications (never awaited; a failing hook never fails the job). */
  readonly onNotice?: (n: JobNotice) => void
  /** Fire `throttled-long` once a limit has held this long (default: never). */
  readonly throttledNoticeMs?: number
  /** Clock (default performance.now / Date.now). */
  readonly now?: () => number
}

/** A gate bound to one run of one job; `finish()` records how it ended. */
export interface JobControl extends ChunkGate {
  readonly job: JobKind
  readonly runId: string
  /** The settings as last read. */
  settings(): JobSettings
  /** Records the end of the run (`finished`, `failed`, `stopped`) with the final figures. */
  finish(state: 'finished' | 'failed' | 'stopped', progress?: ChunkProgress, message?: string): Promise<void>
}

/**
 * Opens job control for one run: applies the command line's settings and
 * records the run as `running`.
 * @throws ShardkitError `PRECONDITION_FAILED` when the job tables are missing (run `shardctl provision`)
 * @example
 * const jc = await openJobControl(rt, 'backfill', { scope: 'user+merchant', logger })
 * await runBackfill(rt, { control: jc })
 * await jc.finish('finished')
 */
export async function openJobControl(rt: Runtime, job: JobKind, opts: JobControlOptions): Promise<JobControl> {
  const logger = opts.logger ?? rt.logger
  if (opts.initial) {
    const change: Record<string, number | null> = {}
    for (const [k, v] of Object.entries(opts.initial)) if (v !== undefined) change[k] = v
    if (Object.keys(change).length > 0) {
      const r = await changeJobSettings(rt, job, change, `${job}@${hostname()} pid ${process.pid}`)
      for (const c of r.changed) logger.info({ job, setting: c.field, from: c.from, to: c.to, by: 'command line' }, `${job}: ${c.field} ${String(c.from)} -> ${String(c.to)}`)
    }
  }
  const gate = new Gate(rt, job, opts, logger, await readJobSettings(rt, job))
  try {
    await gate.start()
  } catch (err) {
    throw isMissingTable(err) ? jobTablesMissing(rt, err) : err
  }
  return gate
}

/** How far behind its limit a throttled job may catch up at full speed (ms of rows at the limit). */
export const THROTTLE_CREDIT_MS = 1_000

class Gate implements JobControl {
  readonly runId = randomUUID()
  private readonly clock: () => number
  private readonly pollMs: number
  private readonly reportMs: number
  private lastRead: number
  private lastReport = -Infinity
  private samples: RateSample[] = []
  private windowStart: number
  private windowRows: number | undefined
  private readFailing = false
  private throttledNoticed = false
  private state: 'running' | 'paused' = 'running'

  constructor(
    private readonly rt: Runtime,
    readonly job: JobKind,
    private readonly opts: JobControlOptions,
    private readonly logger: Logger,
    private current: JobSettings,
  ) {
    this.clock = opts.now ?? (() => performance.now())
    this.pollMs = opts.pollMs ?? 200
    this.reportMs = opts.reportMs ?? 1_000
    this.lastRead = this.clock()
    this.windowStart = this.clock()
  }

  settings(): JobSettings {
    return this.current
  }

  async start(): Promise<void> {
    await this.rt.control().query(
      `INSERT INTO ${qualified(this.rt.config.control.database, JOB_PROGRESS_TABLE)}
         (job, run_id, scope, state, host, pid, started_at, updated_at, finished_at, rows_done, rows_total, chunks, chunk_size, concurrency, max_rows_per_second, samples, message)
       VALUES (?, ?, ?, 'running', ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), NULL, 0, NULL, 0, NULL, NULL, ?, '[]', NULL)
       ON DUPLICATE KEY UPDATE run_id = VALUES(run_id), scope = VALUES(scope), state = 'running', host = VALUES(host), pid = VALUES(pid), started_at = VALUES(started_at),
         updated_at = VALUES(updated_at), finished_at = NULL, rows_done = 0, rows_total = NULL, chunks = 0, chunk_size = NULL, concurrency = NULL,
         max_rows_per_second = VALUES(max_rows_per_second), samples = '[]', message = NULL`,
      [this.job, this.runId, this.opts.scope.slice(0, 32), hostname().slice(0, 128), process.pid, this.current.maxRowsPerSecond],
    )
  }

  async betweenChunks(progress: () => ChunkProgress, settle?: () => Promise<unknown>): Promise<NextChunkSettings> {
    const signal = this.opts.signal
    await this.refresh(progress)
    if (this.current.paused && !signal?.aborted) {
      // Let the chunk in flight commit first: a paused job holds no lock and no transaction.
      await settle?.().catch(() => undefined)
      this.state = 'paused'
      this.logger.info({ job: this.job, by: this.current.updatedBy }, `${this.job}: paused; waiting for \`shardctl ${this.job} resume\``)
      this.opts.onNotice?.({ kind: 'paused', job: this.job })
      await this.report(progress(), true)
      while (this.current.paused && !signal?.aborted) {
        await sleep(this.pollMs, signal)
        await this.refresh(progress, true)
      }
      this.state = 'running'
      if (!signal?.aborted) {
        this.logger.info({ job: this.job, by: this.current.updatedBy }, `${this.job}: resumed`)
        this.opts.onNotice?.({ kind: 'resumed', job: this.job })
      }
      this.restartWindow(progress().rowsDone)
      await this.report(progress(), true)
    }
    await this.throttle(progress, settle)
    await this.report(progress())
    return { chunkSize: this.current.chunkSize, concurrency: this.current.concurrency, maxRowsPerSecond: this.current.maxRowsPerSecond }
  }

  /**
   * Holds rows/s to the limit, measured since the limit (or the run, or the
   * resume) began, with at most THROTTLE_CREDIT_MS of catch-up after falling
   * behind (without it, a job starved for 10 s would then copy 10 s of rows
   * at full speed: a burst on the primary the operator throttled to protect).
   * Under a limit the chunk in flight is settled first, so every row read is
   * counted (a pipelined chunk would otherwise run ahead of the limit by a
   * chunk, which at a low limit is seconds of rows).
   */
  private async throttle(progress: () => ChunkProgress, settle?: () => Promise<unknown>): Promise<void> {
    const signal = this.opts.signal
    if (this.current.maxRowsPerSecond !== null) await settle?.().catch(() => undefined)
    for (;;) {
      const limit = this.current.maxRowsPerSecond
      const done = progress().rowsDone
      this.windowRows ??= done
      if (limit === null || signal?.aborted || this.current.paused) return
      const dueMs = ((done - this.windowRows) / limit) * 1000
      // Time the job fell behind its limit (a stalled chunk, a starved process) is not made up at
      // full speed afterwards: at most THROTTLE_CREDIT_MS of it counts, so the limit holds as a pace.
      const now = this.clock()
      this.windowStart = Math.max(this.windowStart, now - dueMs - THROTTLE_CREDIT_MS)
      const waitMs = dueMs - (now - this.windowStart)
      if (waitMs <= 0) return
      this.noticeLongThrottle(limit)
      await sleep(Math.min(waitMs, this.pollMs), signal)
      await this.refresh(progress)
      if (this.current.paused) return
    }
  }

  private noticeLongThrottle(limit: number): void {
    const after = this.opts.throttledNoticeMs
    if (after === undefined || this.throttledNoticed || !this.current.throttledAt) return
    const minutes = (Date.now() - Date.parse(this.current.throttledAt)) / 60_000
    if (minutes * 60_000 < after) return
    this.throttledNoticed = true
    this.opts.onNotice?.({ kind: 'throttled-long', job: this.job, minutes: Math.round(minutes), maxRowsPerSecond: limit })
  }

  private restartWindow(rows: number): void {
    this.windowStart = this.clock()
    this.windowRows = rows
    // The rate status shows is the rate under the settings in force now.
    this.samples = [[Date.now(), rows]]
  }

  /** Re-reads the settings if due; logs and applies what changed. */
  private async refresh(progress: () => ChunkProgress, force = false): Promise<void> {
    const t = this.clock()
    if (!force && t - this.lastRead < this.pollMs) return
    this.lastRead = t
    let next: JobSettings
    try {
      next = await readJobSettings(this.rt, this.job)
    } catch (err) {
      if (!this.readFailing) this.logger.warn({ job: this.job, code: (err as { code?: string }).code }, `${this.job}: cannot read job settings from the control database; keeping the last ones`)
      this.readFailing = true
      return
    }
    this.readFailing = false
    const before = this.current
    this.current = next
    if (next.revision === before.revision) return
    for (const f of ['paused', 'maxRowsPerSecond', 'chunkSize', 'concurrency'] as const) {
      if (next[f] !== before[f]) this.logger.info({ job: this.job, setting: f, from: before[f], to: next[f], by: next.updatedBy }, `${this.job}: ${f} ${String(before[f])} -> ${String(next[f])}`)
    }
    if (next.maxRowsPerSecond !== before.maxRowsPerSecond) {
      this.throttledNoticed = false
      this.restartWindow(progress().rowsDone)
    }
  }

  private async report(p: ChunkProgress, force = false): Promise<void> {
    const t = this.clock()
    if (!force && t - this.lastReport < this.reportMs) return
    this.lastReport = t
    this.samples.push([Date.now(), p.rowsDone])
    this.samples = trimSamples(this.samples)
    await this.write(this.state, p, null).catch((err) => this.logger.debug({ job: this.job, code: (err as { code?: string }).code }, `${this.job}: progress report failed`))
  }

  private async write(state: string, p: ChunkProgress | undefined, message: string | null, finished = false): Promise<void> {
    await this.rt.control().query(
      `UPDATE ${qualified(this.rt.config.control.database, JOB_PROGRESS_TABLE)}
          SET state = ?, updated_at = UTC_TIMESTAMP(3), finished_at = ${finished ? 'UTC_TIMESTAMP(3)' : 'NULL'},
              rows_done = COALESCE(?, rows_done), rows_total = COALESCE(?, rows_total), chunks = COALESCE(?, chunks),
              chunk_size = COALESCE(?, chunk_size), concurrency = COALESCE(?, concurrency), max_rows_per_second = ?, samples = ?, message = ?
        WHERE job = ? AND run_id = ?`,
      [state, p?.rowsDone ?? null, p?.rowsTotal ?? null, p?.chunks ?? null, p?.chunkSize ?? null, p?.concurrency ?? null, this.current.maxRowsPerSecond, JSON.stringify(this.samples), message?.slice(0, 512) ?? null, this.job, this.runId],
    )
  }

  async finish(state: 'finished' | 'failed' | 'stopped', progress?: ChunkProgress, message?: string): Promise<void> {
    if (progress) {
      this.samples.push([Date.now(), progress.rowsDone])
      this.samples = trimSamples(this.samples)
    }
    await this.write(state, progress, message ?? null, true).catch((err) => this.logger.warn({ job: this.job, code: (err as { code?: string }).code }, `${this.job}: could not record the end of the run`))
  }
}
