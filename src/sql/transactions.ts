/**
 * Follows explicit transactions per session (a general log's thread id, or
 * the one session of a SQL file) and flags those whose statements reach
 * more than one user shard. Only statements inside a transaction are parsed
 * for their key values; the open-session table is bounded.
 */
import { classifyId, shardFieldUnchecked } from '../idgen/layout.js'
import { shardOfKey } from '../router/shard-function.js'
import type { Classification } from './classify.js'

interface OpenTx {
  digests: string[]
  examples: string[]
  userShards: Set<string>
  crosses: boolean
  touched: boolean
}

/** A transaction that spans shard keys, ready to be counted as a digest. */
export interface CrossTransaction {
  readonly digest: string
  readonly example: string
}

const MAX_MEMBERS = 20

/** The user-shard identities a classified statement reaches, or null when it reaches many or cannot tell. */
function shardIdentities(v: Classification, idCeiling: string): string[] | null {
  if (v.kind === 'other' || v.class === 'other') return []
  if (v.class === 'unparsed' || v.class === 'scatter' || v.dimension === 'merchant' && v.kind === 'write') return null
  const out: string[] = []
  for (const k of v.keys) {
    if (k === null || !/^\d+$/.test(k)) return null
    if (v.dimension === 'user') out.push('u' + shardOfKey(k))
    else if (v.dimension === 'order') out.push(classifyId(k, idCeiling) === 'legacy' ? 'legacy-order:' + k : 'u' + shardFieldUnchecked(k))
    else out.push('m' + shardOfKey(k))
  }
  return out.length > 0 ? out : null
}

/** Tracks open transactions per session. */
export class TransactionTracker {
  private readonly open = new Map<string, OpenTx>()

  constructor(private readonly idCeiling: string, private readonly maxSessions = 10_000) {}

  /** Whether `session` is inside an explicit transaction. */
  inTransaction(session: string): boolean {
    return this.open.has(session)
  }

  /** Feeds a transaction-control statement; returns a finished cross-shard transaction, if any. */
  control(session: string, digest: string): CrossTransaction | null {
    const word = digest.split(' ')[0]
    if (word === 'begin' || digest.startsWith('start transaction')) {
      const done = this.finish(session)
      if (this.open.size < this.maxSessions) this.open.set(session, { digests: [], examples: [], userShards: new Set(), crosses: false, touched: false })
      return done
    }
    if (word === 'commit' || word === 'rollback') return this.finish(session)
    return null
  }

  /** Records a statement (with its full classification) inside the session's open transaction. */
  statement(session: string, digest: string, sql: string, v: Classification): void {
    const tx = this.open.get(session)
    if (!tx) return
    const ids = shardIdentities(v, this.idCeiling)
    if (ids === null) tx.crosses = true
    else for (const id of ids) tx.userShards.add(id)
    if (ids === null || ids.length > 0) tx.touched = true
    if (tx.digests.length < MAX_MEMBERS) {
      tx.digests.push(digest)
      tx.examples.push(sql.length > 300 ? sql.slice(0, 300) + '...' : sql)
    }
  }

  /** Ends a session's transaction (also on disconnect). */
  finish(session: string): CrossTransaction | null {
    const tx = this.open.get(session)
    if (!tx) return null
    this.open.delete(session)
    if (!tx.touched || (!tx.crosses && tx.userShards.size <= 1)) return null
    return { digest: 'begin; ' + tx.digests.join('; ') + '; commit', example: 'BEGIN; ' + tx.examples.join('; ') + '; COMMIT' }
  }
}
