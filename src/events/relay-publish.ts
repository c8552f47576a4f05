/**
 * One relay batch onto the wire: every row is published with confirms, the
 * rows of different orders pipelined on one channel, the rows of one order
 * chained: an event goes out only after the previous event of the same order
 * in the batch was confirmed, and not at all if that one failed (nack,
 * return, timeout, broken connection). The failed event and everything after
 * it for that order stay unpublished, so the next batch retries them in order
 * and a retry never overtakes.
 */
import type { ConfirmingPublisher } from './amqp.js'
import { encodeEvent, routingKeyOf } from './message.js'
import type { OutboxRow } from './outbox-store.js'

/** What happened to a batch. */
export interface BatchOutcome {
  /** Outbox ids the broker confirmed as routed (to mark published). */
  readonly confirmed: string[]
  /** Returned by the broker: no queue bound for the routing key. */
  readonly unroutable: number
  /** Nacked, timed out or lost with the connection. */
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

/**
 * Publishes `rows` (in id order) and reports which were confirmed.
 * Never throws: every failure is counted in the outcome.
 */
export async function publishBatch(pub: ConfirmingPublisher, rows: readonly OutboxRow[], confirmTimeoutMs: number): Promise<BatchOutcome> {
  const chains = new Map<string, Promise<boolean>>()
  let unroutable = 0
  let failed = 0
  let lastError: string | null = null
  const sent = await Promise.all(
    rows.map((row) => {
      const prev = chains.get(row.event.orderId) ?? Promise.resolve(true)
      const next = prev.then(async (prevOk) => {
        if (!prevOk) return false
        try {
          const { routed } = await withTimeout(
            pub.publish(routingKeyOf(row.event), row.event.eventId, encodeEvent(row.event), { type: row.event.type, timestamp: new Date(row.event.occurredAt) }),
            confirmTimeoutMs,
          )
          if (routed) return true
          unroutable++
          lastError = 'UNROUTABLE'
          return false
        } catch (err) {
          failed++
          lastError = codeOf(err)
          return false
        }
      })
      chains.set(row.event.orderId, next)
      return next
    }),
  )
  return { confirmed: rows.filter((_, i) => sent[i]).map((r) => r.id), unroutable, failed, lastError }
}
