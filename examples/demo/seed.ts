/**
 * Seeds the rehearsal's legacy table with realistic orders from the same
 * generator backfill's tests and benchmarks use (`fixtures/generate-orders.ts`):
 * ~370-byte rows, skewed users and merchants, legacy ids 1..N.
 */
import type { Pool } from 'mysql2/promise'
import { generateOrders } from '../../fixtures/generate-orders.js'

/** The key ranges the seeded orders use, so the load reads real lists. */
export interface SeedResult {
  readonly rows: number
  readonly users: number
  readonly merchants: number
}

/** Fills `database.table` with `rows` generated legacy orders. */
export async function seedLegacy(pool: Pool, database: string, table: string, rows: number, onProgress?: (written: number) => void): Promise<SeedResult> {
  const r = await generateOrders(pool, { database, table, rows, ...(onProgress ? { onProgress } : {}) })
  return { rows: r.rows, users: r.users, merchants: r.merchants }
}
