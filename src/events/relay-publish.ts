/**
 * One relay batch onto the wire. Every row goes to each of its targets with
 * confirms: a queue name (published through the default exchange, so the
 * broker answers for that queue alone) or '' (the topic exchange). The rows of
 * different orders are pipelined on one channel; the rows of one order are
 * chained, an event going out only after the previous one of that order was
 * settled.
 *
 * Per (row, target) the outcome is: confirmed; refused (a nack: the queue is
 * at its cap with reject-publish; or returned: nothing bound / no such
 * queue), which holds the event for that target alone (outbox-retry.ts) while
 * the row counts as handed off; or failed (timeout, broken connection), which
 * leaves the whole row unpublished and stops that order's chain for this
 * batch, so the next batch sends it again (at least once: a target that had
 * confirmed it gets it twice). An event of an order that already has an event
 * held for a target is held for it too (`behind`): a retry never overtakes.
 *
 * `publishHeld` is the retry side: the held events of one target in outbox id
 * order; the first is sent alone (a full queue costs one refused publish per
 * retry, not a batch of them), the rest pipelined per order, each order's
 * chain stopping at its first refusal.
 */
import type { ConfirmingPublisher } from './amqp.js'
import { encodeEvent, routingKeyOf } from './message.js'
import type { OutboxRow } from './outbox-store.js'
import { holdKey, type HeldEvent, type HoldReason } from './outbox-retry.js'

/** What happened to a batch. */
export interface BatchOutcome {
  /** Outbox ids whose every target confirmed or holds the event (to mark published). */
  readonly handedOff: string[]
  /** Events to record as owed to one target. */
  readonly held: HeldEvent[]
  /** Rows left unpublished (a failure on one of their targets, or behind one in their order). */
  readonly left: number
  /** Nacks: a target queue at its cap. */
  readonly nacked: number
  /** Returned by the broker: no queue bound for the routing key, or no such queue. */
  readonly unroutable: number
  /** Timed out or lost with the connection. */
  readonly failed: number
  readonly lastError: string | null
}

/** Error code of an AMQP or driver error, for logs and status. */
export function codeOf(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown }
  return String(e?.code ?? e?.errno ?? (err instanceof Error ? err.name : 'UNKNOWN'))
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined
  const timer = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(Object.assign(new Error(`no confirm within ${ms} ms`), { code: 'CONFIRM_TIMEOUT' })), ms)
  })
  return Promise.race([p, timer]).finally(() => clearTimeout(t))
}

type Sent = 'ok' | 'nack' | 'unroutable' | { error: string }

/**
 * Publishes one event to one target; never throws. Past `deadline` (epoch ms:
 * the relay's lease nearly spent) it sends nothing and reports `LEASE_DEADLINE`,
 * and the confirm wait never runs past it.
 */
export async function sendTo(pub: ConfirmingPublisher, row: OutboxRow, target: string, confirmTimeoutMs: number, deadline = Infinity): Promise<Sent> {
  const left = deadline - Date.now()
  if (left <= 0) return { error: 'LEASE_DEADLINE' }
  confirmTimeoutMs = Math.max(1, Math.min(confirmTimeoutMs, left))
  try {
    const key = target === '' ? routingKeyOf(row.event) : target
    const headers = { type: row.event.type, timestamp: new Date(row.event.occurredAt) }
    const { routed } = await withTimeout(pub.publish(key, row.event.eventId, encodeEvent(row.event), headers, target === '' ? undefined : { exchange: '' }), confirmTimeoutMs)
    return routed ? 'ok' : 'unroutable'
  } catch (err) {
    const code = codeOf(err)
    return code === 'NACK' ? 'nack' : { error: code }
  }
}

export interface PublishBatchOptions {
  readonly confirmTimeoutMs: number
  /** The targets of a row ('' = the topic exchange). */
  readonly targetsOf: (row: OutboxRow) => readonly string[]
  /** True when an earlier event of the row's order is held for `target` (this outbox or, with a smaller stage version, the other side's). */
  readonly heldBefore: (row: OutboxRow, target: string) => boolean
  /** Epoch ms after which nothing more is sent (the lease's remaining time, less a margin). */
  readonly deadline?: number
}

/**
 * Publishes `rows` (in id order) to their targets and reports what to mark and what to hold.
 * Never throws: every failure is counted in the outcome.
 */
export async function publishBatch(pub: ConfirmingPublisher, rows: readonly OutboxRow[], opts: PublishBatchOptions): Promise<BatchOutcome> {
  const chains = new Map<string, Promise<void>>()
  const stopped = new Set<string>()
  const heldNow = new Set<string>()
  const handedOff = new Set<string>()
  const held: HeldEvent[] = []
  let left = 0, nacked = 0, unroutable = 0, failed = 0
  let lastError: string | null = null
  await Promise.all(
    rows.map((row) => {
      const order = row.event.orderId
      const next = (chains.get(order) ?? Promise.resolve()).then(async () => {
        if (stopped.has(order)) {
          left++
          return
        }
        const targets = opts.targetsOf(row)
        const outcomes = await Promise.all(
          targets.map(async (t): Promise<Sent | 'behind'> => (heldNow.has(holdKey(order, t)) || opts.heldBefore(row, t) ? 'behind' : sendTo(pub, row, t, opts.confirmTimeoutMs, opts.deadline))),
        )
        let error: string | null = null
        const mine: HeldEvent[] = []
        outcomes.forEach((o, i) => {
          if (o === 'ok') return
          if (typeof o === 'object') {
            error = o.error
            return
          }
          if (o === 'nack') nacked++
          if (o === 'unroutable') unroutable++
          mine.push({ row, target: targets[i]!, reason: o as HoldReason })
        })
        if (error !== null) {
          failed++
          lastError = error
          left++
          stopped.add(order)
          return
        }
        if (mine.length > 0) lastError = mine.some((h) => h.reason === 'nack') ? 'NACK' : mine.some((h) => h.reason === 'unroutable') ? 'UNROUTABLE' : lastError
        for (const h of mine) {
          heldNow.add(holdKey(order, h.target))
          held.push(h)
        }
        handedOff.add(row.id)
      })
      chains.set(order, next)
      return next
    }),
  )
  return { handedOff: rows.filter((r) => handedOff.has(r.id)).map((r) => r.id), held, left, nacked, unroutable, failed, lastError }
}

/** What a retry of one target's held events did. */
export interface RetryOutcome {
  /** Outbox ids the target confirmed (to release). */
  readonly delivered: string[]
  /** The first refused or failed id, for the attempt count; null when none was. */
  readonly refusedId: string | null
  readonly lastError: string | null
}

/**
 * Sends `rows` (one target's held events, outbox id order) to `target`.
 * `blocked(row)`: an earlier event of the row's order is held on the other side of a flip.
 */
export async function publishHeld(pub: ConfirmingPublisher, rows: readonly OutboxRow[], target: string, opts: { confirmTimeoutMs: number; blocked: (row: OutboxRow) => boolean; deadline?: number }): Promise<RetryOutcome> {
  const delivered: string[] = []
  let refusedId: string | null = null
  let lastError: string | null = null
  const stopped = new Set<string>()
  const one = async (row: OutboxRow): Promise<void> => {
    const order = row.event.orderId
    if (stopped.has(order)) return
    if (opts.blocked(row)) {
      stopped.add(order)
      return
    }
    const s = await sendTo(pub, row, target, opts.confirmTimeoutMs, opts.deadline)
    if (s === 'ok') {
      delivered.push(row.id)
      return
    }
    stopped.add(order)
    refusedId ??= row.id
    lastError = typeof s === 'object' ? s.error : s === 'nack' ? 'NACK' : 'UNROUTABLE'
  }
  const [first, ...rest] = rows
  if (first === undefined) return { delivered, refusedId, lastError }
  await one(first)
  if (refusedId !== null) return { delivered, refusedId, lastError }
  const chains = new Map<string, Promise<void>>()
  await Promise.all(
    rest.map((row) => {
      const next = (chains.get(row.event.orderId) ?? Promise.resolve()).then(() => one(row))
      chains.set(row.event.orderId, next)
      return next
    }),
  )
  return { delivered, refusedId, lastError }
}
