/**
 * The pure half of the order-event consumer: what to do with an event given
 * what Redis remembers about its order (`classifyEvent`), a FIFO lock per
 * order so two events of one order are never handled at the same time
 * (`KeyedLock`), and a wake-up board so an event waiting for a missing
 * version resumes as soon as that version is handled (`KeyedSignal`).
 * No I/O here: the consumer (consumer.ts) and Redis (dedupe.ts) do that.
 */

/** What Redis remembers about one order for one queue. */
export interface OrderMemory {
  /** This event id was already handled. */
  readonly seen: boolean
  /** The last version handled for the order; 0 when none is known. */
  readonly lastVersion: number
}

/** A version that skipped ahead: `expected` is the one that never arrived in time. */
export interface VersionGap {
  readonly expected: number
  readonly got: number
}

/**
 * The decision for one delivery:
 * - `duplicate`: this event id was handled already (a redelivery or a relay resend): ack, skip.
 * - `stale`: an older or equal version was handled already (it arrived after a gap was given up on): ack, skip.
 * - `handle`: the next version, or a gap whose wait is over (then `gap` is set): call the handler.
 * - `wait`: a later version than the next one; hold it until the missing one is handled or the wait ends.
 */
export type EventDecision =
  | { readonly action: 'duplicate' }
  | { readonly action: 'stale'; readonly lastVersion: number }
  | { readonly action: 'handle'; readonly gap?: VersionGap }
  | { readonly action: 'wait'; readonly gap: VersionGap }

/**
 * Decides what to do with version `version` of an order.
 * @param waitOver true once the event has waited `gapWaitMs` for the missing versions
 */
export function classifyEvent(memory: OrderMemory, version: number, waitOver: boolean): EventDecision {
  if (memory.seen) return { action: 'duplicate' }
  if (version <= memory.lastVersion) return { action: 'stale', lastVersion: memory.lastVersion }
  if (version === memory.lastVersion + 1) return { action: 'handle' }
  const gap = { expected: memory.lastVersion + 1, got: version }
  return waitOver ? { action: 'handle', gap } : { action: 'wait', gap }
}

/**
 * After Redis lost the queue's memory (at `lossAtMs`, when it was noticed) and
 * with no durable store, an order Redis knows nothing about may have been
 * handled up to any version before the loss. An event of such an order that
 * occurred before the loss (with `clockSkewMs` of slack between the producer's
 * clock and ours) may be a resend of one already handled: it is unvouched.
 * An event that occurred after it cannot have been handled before the loss.
 * Orders Redis remembers (handled since the loss) are ordered as usual: every
 * event before the loss has a lower version than one handled after it.
 */
export function unvouchedAfterLoss(memory: OrderMemory, occurredAtMs: number, lossAtMs: number, clockSkewMs: number): boolean {
  return lossAtMs > 0 && !memory.seen && memory.lastVersion === 0 && !(occurredAtMs >= lossAtMs + clockSkewMs)
}

/**
 * One FIFO mutex per key, created on demand and forgotten when free, so
 * memory follows the number of keys in flight, not the number ever seen.
 */
export class KeyedLock {
  private readonly queues = new Map<string, (() => void)[]>()

  /** Resolves with a release function once the caller holds `key`. Callers queue in call order. */
  acquire(key: string): Promise<() => void> {
    const waiting = this.queues.get(key)
    if (waiting === undefined) {
      this.queues.set(key, [])
      return Promise.resolve(this.releaser(key))
    }
    return new Promise((resolve) => waiting.push(() => resolve(this.releaser(key))))
  }

  /** Keys currently held. */
  get size(): number {
    return this.queues.size
  }

  private releaser(key: string): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const waiting = this.queues.get(key)
      const next = waiting?.shift()
      if (next) next()
      else this.queues.delete(key)
    }
  }
}

/**
 * Wake-ups by key: `wait` resolves when `notify(key)` is called, after `ms`,
 * or when the signal aborts, whichever comes first. Never rejects.
 */
export class KeyedSignal {
  private readonly waiters = new Map<string, Set<() => void>>()

  /** Resolves `'notified'`, `'timeout'` or `'aborted'`. */
  wait(key: string, ms: number, signal?: AbortSignal): Promise<'notified' | 'timeout' | 'aborted'> {
    if (signal?.aborted) return Promise.resolve('aborted')
    return new Promise((resolve) => {
      let set = this.waiters.get(key)
      if (!set) this.waiters.set(key, (set = new Set()))
      const finish = (how: 'notified' | 'timeout' | 'aborted') => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        const s = this.waiters.get(key)
        s?.delete(wake)
        if (s?.size === 0) this.waiters.delete(key)
        resolve(how)
      }
      const wake = () => finish('notified')
      const onAbort = () => finish('aborted')
      const timer = setTimeout(() => finish('timeout'), Math.max(0, ms))
      signal?.addEventListener('abort', onAbort, { once: true })
      set.add(wake)
    })
  }

  /** Wakes every waiter of `key`. */
  notify(key: string): void {
    const set = this.waiters.get(key)
    if (!set) return
    for (const wake of [...set]) wake()
  }

  /** Keys with at least one waiter. */
  get size(): number {
    return this.waiters.size
  }
}
