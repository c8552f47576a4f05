/**
 * The store's side of the write fence (the fence itself is the cutover's,
 * src/cutover/fence.ts). Every primary transaction passes the fence at the
 * stage version it was planned under, before it writes.
 *
 * Choice for a database that was never fenced: at stage `legacy`, and only
 * there, a primary with no fence row (no `shardkit_fence` table, or no row in
 * it: the cutover creates the rows at the first switch) is allowed, so a
 * service can embed the store before anyone ran the cutover. A fence row that
 * exists is always obeyed, at every stage; past `legacy` a missing fence is
 * refused, since writes there must be fenced.
 */
import type { PoolConnection } from 'mysql2/promise'
import { checkFence } from '../cutover/fence.js'
import type { StageState } from '../cutover/stages.js'
import { isShardkitError } from '../errors.js'

/**
 * Passes the fence of `database` on the primary transaction's connection;
 * returns the primary's clock read with it (undefined when there is no fence row at `legacy`).
 * @throws ShardkitError `FENCE_REJECTED` (retryable) when the fence is raised or at another version; (not retryable) when it is missing past `legacy`
 */
export async function passFence(conn: PoolConnection, database: string, state: StageState): Promise<{ now: string | undefined }> {
  try {
    return await checkFence(conn, database, state.version)
  } catch (err) {
    if (state.stage === 'legacy' && isShardkitError(err, 'FENCE_REJECTED') && err.details.fence === 'missing') return { now: undefined }
    throw err
  }
}
