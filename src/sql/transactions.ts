/**
 * Follows transactions per session (a general log's thread id, or the one
 * session of a SQL file) and flags those the sharded layout cannot keep
 * atomic: statements that reach more than one user shard, or writes to the
 * orders and to another table in one transaction. A transaction is opened by
 * BEGIN / START TRANSACTION, or implicitly while `SET autocommit = 0` holds
 * (then every COMMIT or ROLLBACK starts the next one). The open-session table
 * is bounded.
 */
import { classifyId, shardFieldUnchecked } from '../idgen/layout.js'
import { shardOfKey } from '../router/shard-function.js'
import type { Reason } from './reasons.js'
import type { Classification } from './verdict.js'

interface OpenTx {
  digests: string[]
  examples: string[]
  userShards: Set<string>
  crosses: boolean
  touched: boolean
  touchedOrders: boolean
  wroteOther: boolean
}

/** A transaction the sharded layout cannot keep, ready to be counted as a digest. */
export interface CrossTransaction {
  readonly digest: string
  readonly example: string
  readonly reasons: readonly Reason[]
}

const MAX_MEMBERS = 20
const DECIMAL = /^(0|[1-9][0-9]{0,18})$/

/** The user-shard identities a classified statement reaches, or null when it reaches many or cannot tell. */
function shardIdentities(v: Classification, idCeiling: string): string[] | null {
  if (v.kind === 'other' || v.class === 'other') return []
  if (v.class === 'unparsed' || v.class === 'scatter' || (v.dimension === 'merchant' && v.kind === 'write')) return null
  const out: string[] = []
  for (const k of v.keys) {
    if (k === null || !DECIMAL.test(k)) return null
    if (v.dimension === 'user') out.push('u' + shardOfKey(k))
    else if (v.dimension === 'order') out.push(classifyId(k, idCeiling) === 'legacy' ? 'legacy-order:' + k : 'u' + shardFieldUnchecked(k))
    else out.push('m' + shardOfKey(k))
  }
  return out.length > 0 ? out : null
}

const newTx = (): OpenTx => ({ digests: [], examples: [], userShards: new Set(), crosses: false, touched: false, touchedOrders: false, wroteOther: false })

/** Tracks open transactions per session. */
export class TransactionTracker {
  private readonly open = new Map<string, OpenTx>()
  /** Sessions running with autocommit off: each statement belongs to a transaction. */
  private readonly manual = new Set<string>()

  constructor(private readonly idCeiling: string, private readonly maxSessions = 10_000) {}

  /** Whether `session` is inside a transaction (explicit, or implicit under autocommit = 0). */
  inTransaction(session: string): boolean {
    return this.open.has(session) || this.manual.has(session)
  }

  /** Feeds a transaction-control statement (by digest); returns a finished transaction the layout cannot keep, if any. */
  control(session: string, digest: string): CrossTransaction | null {
    const word = digest.split(' ')[0]
    if (word === 'begin' || digest.startsWith('start transaction')) {
      const done = this.finish(session)
      this.openTx(session)
      return done
    }
    // ROLLBACK TO SAVEPOINT stays inside the transaction
    if ((word === 'commit' || word === 'rollback') && !/^rollback (work )?to /.test(digest)) return this.finish(session)
    return null
  }

  /** `SET autocommit = on|off`. Turning it on commits the open transaction, as the server does. */
  autocommit(session: string, on: boolean): CrossTransaction | null {
    if (!on) {
      if (this.manual.size < this.maxSessions) this.manual.add(session)
      return null
    }
    const done = this.finish(session)
    this.manual.delete(session)
    return done
  }

  /** Records a statement (with its classification and key values) inside the session's transaction. */
  statement(session: string, digest: string, sql: string, v: Classification, isWrite: boolean): void {
    let tx = this.open.get(session)
    if (!tx) {
      if (!this.manual.has(session)) return
      tx = this.openTx(session)
      if (!tx) return
    }
    const ids = shardIdentities(v, this.idCeiling)
    if (ids === null) tx.crosses = true
    else for (const id of ids) tx.userShards.add(id)
    if (ids === null || ids.length > 0) tx.touched = true
    if (v.class === 'other') tx.wroteOther ||= isWrite
    else tx.touchedOrders = true
    if (tx.digests.length < MAX_MEMBERS) {
      tx.digests.push(digest)
      tx.examples.push(sql.length > 300 ? sql.slice(0, 300) + '...' : sql)
    }
  }

  /** Ends a session's transaction (also on disconnect, and on autocommit = 1). */
  finish(session: string): CrossTransaction | null {
    const tx = this.open.get(session)
    if (!tx) return null
    this.open.delete(session)
    const reasons: Reason[] = []
    if (tx.touched && (tx.crosses || tx.userShards.size > 1)) reasons.push('transaction-across-shard-keys')
    if (tx.touchedOrders && tx.wroteOther) reasons.push('transaction-across-tables')
    if (reasons.length === 0) return null
    return { digest: 'begin; ' + tx.digests.join('; ') + '; commit', example: 'BEGIN; ' + tx.examples.join('; ') + '; COMMIT', reasons }
  }

  /** A session ended (a general log's Quit): its open transaction is judged as it stands, and its autocommit setting is gone. */
  end(session: string): CrossTransaction | null {
    const done = this.finish(session)
    this.manual.delete(session)
    return done
  }

  private openTx(session: string): OpenTx | undefined {
    if (this.open.size >= this.maxSessions) return undefined
    const tx = newTx()
    this.open.set(session, tx)
    return tx
  }
}
