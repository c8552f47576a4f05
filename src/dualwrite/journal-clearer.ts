/**
 * Deletes journal rows whose replay succeeded, in batches, off the request
 * path: one `DELETE ... WHERE id IN (...)` per primary every few
 * milliseconds instead of one commit per write. Losing a batch (a crash, a
 * failed DELETE) is harmless: the drainer replays those entries again, and a
 * replay of an order whose secondaries already match changes nothing.
 */
import type { Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { poolFor } from './connections.js'
import type { PrimaryDatabase } from './placement.js'
import { errorCode, JOURNAL_TABLE } from './replay.js'

/** Batches journal-row deletes per primary database. */
export class JournalClearer {
  private readonly pending = new Map<string, { primary: PrimaryDatabase; ids: string[] }>()
  private timer: NodeJS.Timeout | undefined
  private inFlight = new Set<Promise<void>>()

  constructor(
    private readonly rt: Runtime,
    private readonly logger: Logger,
    private readonly delayMs = 10,
    private readonly maxBatch = 500,
  ) {}

  /** Schedules the delete of one journal row. */
  enqueue(primary: PrimaryDatabase, id: string): void {
    let p = this.pending.get(primary.name)
    if (!p) this.pending.set(primary.name, (p = { primary, ids: [] }))
    p.ids.push(id)
    if (p.ids.length >= this.maxBatch) this.flushOne(primary.name)
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.delayMs)
      this.timer.unref()
    }
  }

  /** Deletes everything scheduled and waits for it (and for batches already on their way). */
  async flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const name of [...this.pending.keys()]) this.flushOne(name)
    await Promise.all([...this.inFlight])
  }

  private flushOne(name: string): void {
    const p = this.pending.get(name)
    if (!p || p.ids.length === 0) return
    this.pending.delete(name)
    const run: Promise<void> = Promise.resolve()
      .then(() => poolFor(this.rt, p.primary.host).query(`DELETE FROM ${qualified(p.primary.database, JOURNAL_TABLE)} WHERE id IN (?)`, [p.ids]))
      .then(
        () => undefined,
        (err: unknown) => this.logger.warn({ primary: name, entries: p.ids.length, code: errorCode(err) }, 'journal clear failed; the drainer will replay these entries (harmless)'),
      )
      .finally(() => this.inFlight.delete(run))
    this.inFlight.add(run)
  }
}
