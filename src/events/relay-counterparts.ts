/**
 * What the relay asks of the other side of a write flip, one counterpart
 * outbox at a time. An order lives in two possible primaries: legacy and its
 * user shard's database. So a legacy row's counterpart is the user database
 * of its user, and a user database's row's counterpart is legacy.
 *
 * Per counterpart, for the rows of a batch: the flip barrier (its oldest
 * unpublished stage version: our rows above it wait) and its held events
 * (outbox-retry.ts: an order's later events wait behind them). A counterpart
 * that does not answer (down, or slower than the probe timeout) holds back only
 * the rows of its own orders, and is skipped with backoff (100 ms doubling up
 * to the relay's cap); while it is, the legacy relay does not even read the
 * rows of its shards (readPending's exclusion), so one unreachable user host
 * stops no other events. A cleared barrier version is cached per counterpart
 * (no write commits below the fences' current version, so it stays cleared);
 * an answer from one counterpart clears nothing for another.
 */
import type { Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { primaryOf, shardLocation, type PrimaryDatabase } from '../dualwrite/placement.js'
import { firstPendingStageVersion, type OutboxRow } from './outbox-store.js'
import { heldKeys, holdKey } from './outbox-retry.js'
import { codeOf } from './relay-publish.js'

/** What the other side says about a batch. */
export interface Screened {
  /** Rows the barrier lets through and whose counterpart answered, in id order. */
  readonly ready: OutboxRow[]
  /** Rows held back: the barrier, or a counterpart that did not answer. */
  readonly left: number
  /** The counterpart whose older unpublished row holds ours back (the first one found). */
  readonly waitingOn: { readonly outbox: string; readonly stageVersion: number } | null
  /** Counterparts that did not answer (names). */
  readonly down: string[]
  /** True when an earlier event of the row's order is held for `target` on the counterpart (smaller stage version). */
  readonly theirHold: (row: OutboxRow, target: string) => boolean
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined
  const timer = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'PROBE_TIMEOUT' })), ms)
  })
  return Promise.race([p, timer]).finally(() => clearTimeout(t))
}

export class Counterparts {
  private readonly byName = new Map<string, PrimaryDatabase>()
  private readonly down = new Map<string, { until: number; backoff: number }>()
  private readonly cleared = new Map<string, number>()

  constructor(
    private readonly rt: Runtime,
    all: readonly PrimaryDatabase[],
    private readonly o: { maxBackoffMs: number; probeTimeoutMs: number; logger: Logger },
  ) {
    for (const p of all) this.byName.set(p.name, p)
  }

  /** The counterpart outbox of a row of `p`, or undefined when that database is not a configured primary. */
  of(p: PrimaryDatabase, row: OutboxRow): PrimaryDatabase | undefined {
    if (p.side === 'user') return this.byName.get('legacy')
    return this.byName.get(primaryOf(shardLocation(this.rt.config, 'user', row.event.userId)).name)
  }

  /** For the legacy outbox: the logical user shards whose database is being skipped (backoff running). */
  skippedShards(p: PrimaryDatabase): number[] {
    if (p.side !== 'legacy') return []
    const now = Date.now()
    const downNames = [...this.down].filter(([, d]) => now < d.until).map(([n]) => n)
    if (downNames.length === 0) return []
    return this.rt.config.dimensions.user.shards.filter((s) => downNames.includes(primaryOf({ side: 'user', host: s.host, database: s.database, table: s.table }).name)).map((s) => s.shard)
  }

  /** Names of the counterparts being skipped now. */
  skipped(): string[] {
    const now = Date.now()
    return [...this.down].filter(([, d]) => now < d.until).map(([n]) => n)
  }

  private markDown(name: string, err: unknown): void {
    const prev = this.down.get(name)
    const backoff = Math.min(this.o.maxBackoffMs, prev ? prev.backoff * 2 : 100)
    this.down.set(name, { until: Date.now() + backoff, backoff })
    this.o.logger.warn({ outbox: name, code: codeOf(err), backoffMs: backoff }, 'events relay: an outbox of the other side did not answer; its orders\' events wait, the others go on')
  }

  /** Barrier and holds of the counterparts of `rows` (of outbox `p`); see the module comment. */
  async screen(p: PrimaryDatabase, rows: readonly OutboxRow[], opts: { barrier: boolean }): Promise<Screened> {
    const groups = new Map<string, { c: PrimaryDatabase; rows: OutboxRow[] }>()
    const ready = new Set<OutboxRow>()
    for (const r of rows) {
      const c = this.of(p, r)
      if (!c) {
        ready.add(r)
        continue
      }
      const g = groups.get(c.name) ?? { c, rows: [] }
      g.rows.push(r)
      groups.set(c.name, g)
    }
    const holds = new Map<string, Map<string, number>>()
    const down: string[] = []
    let waitingOn: Screened['waitingOn'] = null
    const now = Date.now()
    await Promise.all(
      [...groups.values()].map(async ({ c, rows: mine }) => {
        const d = this.down.get(c.name)
        if (d && now < d.until) {
          down.push(c.name)
          return
        }
        const key = `${p.name}\n${c.name}`
        const top = Math.max(...mine.map((r) => r.stageVersion))
        const cached = this.cleared.get(key) ?? -1
        const needBarrier = opts.barrier && top > cached
        try {
          const [v, h] = await withTimeout(Promise.all([needBarrier ? firstPendingStageVersion(this.rt, c) : Promise.resolve(undefined), heldKeys(this.rt, c, [...new Set(mine.map((r) => r.event.orderId))])]), this.o.probeTimeoutMs)
          this.down.delete(c.name)
          holds.set(c.name, h)
          let upTo = opts.barrier ? cached : Number.MAX_SAFE_INTEGER
          if (needBarrier) {
            upTo = v !== undefined && v < top ? v : top
            this.cleared.set(key, Math.max(cached, upTo))
            upTo = Math.max(cached, upTo)
            if (v !== undefined && v < top) waitingOn ??= { outbox: c.name, stageVersion: v }
          }
          for (const r of mine) if (r.stageVersion <= upTo) ready.add(r)
        } catch (err) {
          this.markDown(c.name, err)
          down.push(c.name)
        }
      }),
    )
    const readyRows = rows.filter((r) => ready.has(r))
    return {
      ready: readyRows,
      left: rows.length - readyRows.length,
      waitingOn,
      down,
      theirHold: (row, target) => {
        const c = this.of(p, row)
        const sv = c ? holds.get(c.name)?.get(holdKey(row.event.orderId, target)) : undefined
        return sv !== undefined && sv < row.stageVersion
      },
    }
  }
}
