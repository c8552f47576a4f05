/**
 * The backfill and verify status readers the guards call (contracts-11).
 * INTERIM: loaded lazily so the cutover builds while src/backfill/status.ts
 * and src/verify/status.ts are being written; a missing module reads as an
 * error, which the guard reports as a reason.
 */
import type { Runtime } from '../runtime/runtime.js'

/** As in src/backfill/status.ts (contract). */
export interface BackfillStatus {
  readonly state: 'not-started' | 'running' | 'complete'
  readonly dimensions: Record<'user' | 'merchant', { state: 'not-started' | 'running' | 'complete'; rowsCopied: number; updatedAt: string | null }>
  readonly completedAt: string | null
}

/** As in src/verify/status.ts (contract). */
export interface VerifySummary {
  readonly runId: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly clean: boolean
  readonly differences: number
  readonly since: string | null
  readonly dimension: 'user' | 'merchant' | 'all'
}

async function load<T>(specifier: string, name: string): Promise<(rt: Runtime) => Promise<T>> {
  const mod = (await import(specifier)) as Record<string, unknown>
  const fn = mod[name]
  if (typeof fn !== 'function') throw new Error(`${specifier} does not export ${name}`)
  return fn as (rt: Runtime) => Promise<T>
}

const BACKFILL = '../backfill/status.js'
const VERIFY = '../verify/status.js'

/** Calls `readBackfillStatus` from src/backfill/status.ts. */
export async function readBackfillStatus(rt: Runtime): Promise<BackfillStatus> {
  return (await load<BackfillStatus>(BACKFILL, 'readBackfillStatus'))(rt)
}

/** Calls `readLastVerify` from src/verify/status.ts. */
export async function readLastVerify(rt: Runtime): Promise<VerifySummary | null> {
  return (await load<VerifySummary | null>(VERIFY, 'readLastVerify'))(rt)
}
