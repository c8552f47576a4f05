/**
 * Order rows for the write benchmarks: complete rows (every column given, so
 * the store's copies take their fast path), new-layout ids for a spread of
 * users over `worker`'s id space, and a nearest-rank percentile.
 */
import { encodeId } from '../../src/idgen/layout.js'
import { shardOfKey } from '../../src/router/shard-function.js'

export type BenchRow = Record<string, string | number | null>

/** A generator of distinct rows; `timeBase` and `worker` keep two benchmarks' ids apart. */
export function benchOrderRows(o: { timeBase: number; worker: number }): () => BenchRow {
  let seq = 0
  return () => {
    seq++
    const userId = String(10_000 + (seq % 5_000))
    return {
      order_id: encodeId({ time: o.timeBase + Math.floor(seq / 100), worker: o.worker, sequence: seq % 100, shard: shardOfKey(userId) }),
      user_id: userId,
      merchant_id: String(100 + (seq % 500)),
      status: 'created',
      total_cents: 2599,
      currency: 'CNY',
      items: '[{"sku":"SKU-12345","qty":2,"price":1299},{"sku":"SKU-777","qty":1,"price":1}]',
      address: '88 Bench Street, Apartment 12, Shanghai',
      phone: '+86-21-5555-0100',
      note: seq % 3 === 0 ? null : 'leave at the door',
      version: 1,
      created_at: '2026-01-01 12:00:00.000',
      updated_at: '2026-01-01 12:00:00.000',
    }
  }
}

/** The p-th percentile (nearest rank) of an ascending list. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
