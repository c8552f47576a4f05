/**
 * Write load through the dual-write store for fault scenarios: workers
 * insert new orders (and update or delete some of them), retry what the
 * fence refused (nothing was written), and record in an OrderLedger what
 * each order's client saw: acknowledged, deleted, or unknown (an error that
 * may have come after the commit).
 */
import type { DualWriteStore } from '../../../src/dualwrite/store.js'
import { isShardkitError } from '../../../src/errors.js'
import { newOrderId, orderRow } from '../../integration/dualwrite-support.js'
import { ackOnce, type OrderLedger } from './invariants.js'

export interface LoadStats {
  inserts: number
  updates: number
  deletes: number
  /** Fence refusals retried (nothing was written). */
  refusals: number
  /** Writes whose outcome is unknown (error codes counted). */
  unknown: Record<string, number>
}

export interface LoadOptions {
  readonly workers?: number
  /** Pause between writes of one worker (default 5 ms): keeps the 2-core machine usable. */
  readonly pauseMs?: number
  /** Users the load writes for (default 40 from 5000). */
  readonly users?: readonly string[]
  /** Every n-th insert is also updated (default 3), every m-th deleted (default 7); 0 for none. */
  readonly updateEvery?: number
  readonly deleteEvery?: number
}

/** Starts the load; `stop()` ends it and returns the counters. */
export function startLoad(store: DualWriteStore, ledger: OrderLedger, o: LoadOptions = {}) {
  const stats: LoadStats = { inserts: 0, updates: 0, deletes: 0, refusals: 0, unknown: {} }
  const users = o.users ?? Array.from({ length: 40 }, (_, i) => String(5000 + i))
  let stopped = false
  let n = 0
  const unknown = (err: unknown) => {
    const code = (err as { code?: string }).code ?? 'UNKNOWN'
    stats.unknown[code] = (stats.unknown[code] ?? 0) + 1
  }
  /** Retries while the fence refuses (retryable, rolled back before any write). */
  async function fenced<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await fn()
      } catch (err) {
        if (!isShardkitError(err, 'FENCE_REJECTED') || !err.retryable || stopped) throw err
        stats.refusals++
        await new Promise((r) => setTimeout(r, 10))
      }
    }
  }
  const worker = async () => {
    while (!stopped) {
      const i = n++
      const userId = users[i % users.length]!
      const merchantId = String(900 + (i % 13))
      const id = newOrderId(userId)
      ledger.set(id, { userId, merchantId, state: 'unknown' })
      try {
        await fenced(() => store.insert(orderRow(id, userId, merchantId)))
        ackOnce(ledger, id, { userId, merchantId })
        stats.inserts++
        if (o.updateEvery !== 0 && i % (o.updateEvery ?? 3) === 0) {
          ledger.get(id)!.state = 'unknown'
          await fenced(() => store.update(id, { status: 'paid', note: `n${i}` }))
          ledger.get(id)!.state = 'acked'
          stats.updates++
        }
        if (o.deleteEvery !== 0 && i % (o.deleteEvery ?? 7) === 0) {
          ledger.get(id)!.state = 'unknown'
          await fenced(() => store.delete(id))
          ledger.get(id)!.state = 'deleted'
          stats.deletes++
        }
      } catch (err) {
        unknown(err)
      }
      await new Promise((r) => setTimeout(r, o.pauseMs ?? 5))
    }
  }
  const running = Promise.all(Array.from({ length: o.workers ?? 2 }, worker))
  return {
    stats,
    async stop(): Promise<LoadStats> {
      stopped = true
      await running
      return stats
    },
  }
}
