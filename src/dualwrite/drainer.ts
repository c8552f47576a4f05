/**
 * The background drainer: a loop in a service process that replays the
 * dual-write journal. It skips entries younger than `minAgeMs` (their own
 * write is still replaying them) and entries whose backoff has not expired,
 * and it waits longer between passes while secondaries keep failing.
 */
import type { Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { ShardkitError } from '../errors.js'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { drainJournal, type DrainResult } from './journal.js'
import { errorCode } from './replay.js'

export interface JournalDrainerOptions {
  readonly logger?: Logger
  /** Pause between passes when the last one cleared everything (default 1000 ms). */
  readonly intervalMs?: number
  /** Leave entries younger than this to their own write (default 5000 ms). */
  readonly minAgeMs?: number
  readonly secondaryTimeoutMs?: number
  /** Backoff between passes that failed, and per entry. */
  readonly backoff?: BackoffOptions
  readonly random?: () => number
}

/**
 * Replays the journal until stopped.
 * @example
 * const drainer = new JournalDrainer(rt, { logger })
 * drainer.start()
 * ...
 * await drainer.stop()
 */
export class JournalDrainer {
  private readonly rt: Runtime
  private readonly opts: JournalDrainerOptions
  private controller: AbortController | undefined
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  private failedPasses = 0
  private last: DrainResult | undefined

  constructor(rt: Runtime, opts: JournalDrainerOptions = {}) {
    this.rt = rt
    this.opts = opts
  }

  /** True between start() and stop(). */
  get running(): boolean {
    return this.loop !== undefined
  }

  /** The result of the last pass, if any. */
  get lastResult(): DrainResult | undefined {
    return this.last
  }

  /**
   * Starts the loop. Calling it twice is an error.
   * @throws ShardkitError `ALREADY_RUNNING`
   */
  start(): void {
    if (this.loop) throw new ShardkitError('ALREADY_RUNNING', 'the journal drainer is already running; call stop() first', {})
    const controller = new AbortController()
    this.controller = controller
    this.loop = this.run(controller.signal)
  }

  /** Runs the next pass now instead of after the pause. */
  kick(): void {
    this.wake?.()
  }

  /** Stops after the entry in hand and waits for the loop to end. Idempotent. */
  async stop(): Promise<void> {
    this.controller?.abort()
    this.wake?.()
    const loop = this.loop
    this.loop = undefined
    await loop
  }

  private async run(signal: AbortSignal): Promise<void> {
    const log = this.opts.logger ?? this.rt.logger
    while (!signal.aborted) {
      let delay = this.opts.intervalMs ?? 1_000
      try {
        const r = await drainJournal(this.rt, {
          signal,
          logger: log,
          respectBackoff: true,
          minAgeMs: this.opts.minAgeMs ?? 5_000,
          ...(this.opts.secondaryTimeoutMs !== undefined ? { secondaryTimeoutMs: this.opts.secondaryTimeoutMs } : {}),
          ...(this.opts.backoff ? { backoff: this.opts.backoff } : {}),
          ...(this.opts.random ? { random: this.opts.random } : {}),
        })
        this.last = r
        if (r.failed > 0 || r.unreachable.length > 0) {
          this.failedPasses++
          delay = Math.max(delay, backoffDelay(this.failedPasses, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random))
        } else {
          this.failedPasses = 0
        }
        if (r.replayed > 0 || r.failed > 0) log.info({ replayed: r.replayed, failed: r.failed, remaining: r.remaining }, 'dual-write journal drained')
      } catch (err) {
        if (signal.aborted) break
        this.failedPasses++
        delay = Math.max(delay, backoffDelay(this.failedPasses, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random))
        log.warn({ code: errorCode(err) }, 'dual-write journal drain pass failed')
      }
      if (signal.aborted) break
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, delay)
        function done() {
          clearTimeout(t)
          resolve()
        }
        this.wake = done
      })
      this.wake = undefined
    }
  }
}
