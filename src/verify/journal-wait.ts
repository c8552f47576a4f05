/**
 * Differences that the dual-write journal still owes: a primary write whose
 * secondary copy failed is journaled and replayed by the drainer, so its
 * copies differ until the replay. Verify waits for those keys' journal
 * entries to clear (bounded) and compares them once more; a key whose entry
 * does not clear is reported as a difference, with the journal named as the
 * likely cause, never dropped.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { isMissingTable } from '../runtime/mysql-errors.js'
import { primaryDatabases } from '../dualwrite/placement.js'
import { JOURNAL_TABLE } from '../dualwrite/journal.js'

/** The keys among `keys` that have a journal entry on any primary. */
export async function journaledKeys(rt: Runtime, keys: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>()
  if (keys.length === 0) return out
  for (const p of primaryDatabases(rt.config)) {
    const pool = p.side === 'legacy' ? rt.legacy() : rt.host(p.host)
    for (let i = 0; i < keys.length; i += 1000) {
      try {
        const [rows] = await pool.query<RowDataPacket[]>(`SELECT DISTINCT order_id AS k FROM ${qualified(p.database, JOURNAL_TABLE)} WHERE order_id IN (?)`, [keys.slice(i, i + 1000)])
        for (const r of rows) out.add(String(r.k))
      } catch (err) {
        if (!isMissingTable(err)) throw err
      }
    }
  }
  return out
}

/**
 * Waits up to `timeoutMs` for the journal entries of `keys` to clear.
 * Returns the keys still journaled when it gave up (empty: all cleared).
 */
export async function waitForJournal(rt: Runtime, keys: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<Set<string>> {
  const until = Date.now() + timeoutMs
  let pending = await journaledKeys(rt, keys)
  while (pending.size > 0 && Date.now() < until) {
    signal?.throwIfAborted()
    await new Promise((r) => setTimeout(r, 250))
    pending = await journaledKeys(rt, [...pending])
  }
  return pending
}
