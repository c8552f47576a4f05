/**
 * `readBackfillStatus`: what the cutover guards and `cutover status` read.
 */
import type { Runtime } from '../runtime/runtime.js'
import { isMissingTable } from '../runtime/mysql-errors.js'
import { readCheckpoints } from './checkpoints.js'

type DimState = 'not-started' | 'running' | 'complete'

export interface BackfillStatus {
  readonly state: DimState
  readonly dimensions: Record<'user' | 'merchant', { state: DimState; rowsCopied: number; updatedAt: string | null }>
  readonly completedAt: string | null
}

/** The backfill's state per dimension; `complete` only when both dimensions are. */
export async function readBackfillStatus(rt: Runtime): Promise<BackfillStatus> {
  let cps
  try {
    cps = await readCheckpoints(rt.control(), rt.config.control.database)
  } catch (err) {
    if (isMissingTable(err)) cps = new Map()
    else throw err
  }
  const dim = (d: 'user' | 'merchant') => {
    const c = cps.get(d)
    return { state: (c?.state ?? 'not-started') as DimState, rowsCopied: c?.rowsCopied ?? 0, updatedAt: c?.updatedAt ?? null }
  }
  const dimensions = { user: dim('user'), merchant: dim('merchant') }
  const states = [dimensions.user.state, dimensions.merchant.state]
  const state: DimState = states.every((s) => s === 'complete') ? 'complete' : states.every((s) => s === 'not-started') ? 'not-started' : 'running'
  const done = [cps.get('user')?.completedAt, cps.get('merchant')?.completedAt].filter((x): x is string => !!x).sort()
  return { state, dimensions, completedAt: state === 'complete' ? (done[done.length - 1] ?? null) : null }
}
