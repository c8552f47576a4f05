/**
 * The status poller behind `shardctl serve`: builds the status document
 * every interval, and at once when the stage changes (it listens on the
 * stage's Redis channel, so a `cutover advance` reaches the page in well
 * under a second). One build runs at a time.
 *
 * A build whose control database did not answer is not published: the last
 * good document stays, with the error, and grows old; the page shows STALE
 * once it is older than three intervals. A stale truth is better than a
 * fresh page of blanks at 3 a.m., as long as it says it is stale.
 */
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { Runtime } from '../runtime/runtime.js'
import { cutoverKeys } from '../cutover/switch-store.js'
import { readStatus } from '../status/build.js'
import type { StatusDocument } from '../status/document.js'

/** What the server sends: the latest good document, its age and the last error. */
export interface PollSnapshot {
  readonly doc: StatusDocument | undefined
  /** ms since the document was built (this process's clock). */
  readonly ageMs: number | null
  readonly intervalMs: number
  /** Why the last build was not published (null when it was). */
  readonly error: string | null
  readonly stale: boolean
}

/** Builds the status on an interval and on every stage change. */
export class StatusPoller extends EventEmitter {
  private latest: StatusDocument | undefined
  private builtAt: number | null = null
  private lastError: string | null = null
  private timer: NodeJS.Timeout | undefined
  private sub: Redis | undefined
  private running: Promise<void> | undefined
  private again = false
  private closed = false

  constructor(
    private readonly rt: Runtime,
    readonly intervalMs: number,
  ) {
    super()
  }

  /** The latest document and how old it is. */
  snapshot(): PollSnapshot {
    const ageMs = this.builtAt === null ? null : Math.round(performance.now() - this.builtAt)
    return { doc: this.latest, ageMs, intervalMs: this.intervalMs, error: this.lastError, stale: ageMs === null || ageMs > 3 * this.intervalMs }
  }

  /** Builds the first document, then every interval; subscribes to stage changes. */
  async start(): Promise<void> {
    await this.refresh()
    this.timer = setInterval(() => void this.refresh(), this.intervalMs)
    this.timer.unref()
    this.sub = this.rt.redisSubscriber()
    this.sub.on('message', () => void this.refresh())
    // Not awaited: with Redis down the subscription waits for it, and serve must answer meanwhile
    // (the interval still finds a change; the stage then comes from the control database).
    this.sub.subscribe(cutoverKeys(this.rt.config.redis.keyPrefix).channel).catch((err: unknown) => {
      this.rt.logger.warn({ err: (err as Error).message }, 'serve: cannot subscribe to stage changes yet; polling until Redis answers')
    })
  }

  /** Builds now (or right after the build in flight). */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.running) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      do {
        this.again = false
        await this.buildOnce()
      } while (this.again && !this.closed)
    })().finally(() => (this.running = undefined))
    return this.running
  }

  private async buildOnce(): Promise<void> {
    let doc: StatusDocument
    try {
      doc = await readStatus(this.rt)
    } catch (err) {
      this.lastError = `status failed: ${(err as Error).message}`
      this.emit('error-status', this.snapshot())
      return
    }
    if (!doc.sources.controlDb.ok) {
      this.lastError = `the control database does not answer (${doc.sources.controlDb.error}); showing the last good status`
      this.rt.logger.warn({ error: doc.sources.controlDb.error }, 'serve: control database unreachable; keeping the last good status')
      this.emit('error-status', this.snapshot())
      return
    }
    const prev = this.latest
    this.latest = doc
    this.builtAt = performance.now()
    this.lastError = null
    const stageMoved = prev !== undefined && (prev.stage.version !== doc.stage.version || prev.stage.stage !== doc.stage.stage)
    if (stageMoved) this.emit('stage', this.snapshot())
    this.emit('status', this.snapshot())
  }

  /** Stops polling and unsubscribes. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    await this.running?.catch(() => undefined)
    await this.sub?.quit().catch(() => this.sub?.disconnect())
  }
}
