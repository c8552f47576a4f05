/**
 * Prometheus metrics of an embedding service (prom-client): what the
 * DualWriteStore and the StageWatcher report through their optional
 * `metrics` option, plus the relay, consumers and journal depth bound at
 * scrape time. Names follow Prometheus conventions (`shardkit_..._seconds`,
 * `_total`); the registry is injectable, so a service adds these to its own
 * `/metrics` beside its other series.
 *
 * Everything is cheap on the write path (a histogram observe, a counter inc);
 * what needs a query (journal depth) runs on scrape, bounded in time.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { isShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import type { StageState } from '../cutover/stages.js'
import type { OutboxRelayStats } from '../events/relay.js'
import type { ConsumerCounters } from '../events/consumer.js'
import { readJournalStatus } from '../dualwrite/journal.js'

/** What the dual-write store calls (src/dualwrite/store.ts). */
export interface DualWriteMetrics {
  /** The primary transaction committed (`startedAt` = performance.now() before it began). */
  primaryCommitted(stage: string, side: string, op: string, startedAt: number, journaled: boolean): void
  /** The primary transaction failed (a fence refusal is counted as one). */
  primaryFailed(stage: string, side: string, op: string, startedAt: number, err: unknown): void
  /** The secondaries were written (or failed and were journaled). */
  secondariesDone(stage: string, startedAt: number, outcome: { ok: boolean; reread: boolean; failures: readonly { code: string }[] } | { error: unknown }): void
}

/** What the stage watcher calls (src/cutover/watcher.ts). */
export interface WatcherMetrics {
  stageApplied(state: StageState): void
  heartbeatWritten(): void
}

/** Options of {@link ShardkitMetrics}. */
export interface ShardkitMetricsOptions {
  /** Where the series are registered (default: a new registry). */
  readonly registry?: Registry
  /** Latency buckets in seconds. */
  readonly buckets?: readonly number[]
}

const DEFAULT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown })?.code
  return typeof c === 'string' && c ? c.slice(0, 40) : 'ERROR'
}

/**
 * A counter that mirrors running totals read at scrape time (each label set's
 * total is only ever added to; a total that went down, e.g. a restarted
 * component, starts the series over).
 */
function mirroredCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): Counter<string> {
  const last = new Map<string, number>()
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, total] of read()) {
        const k = JSON.stringify(labels)
        const prev = last.get(k) ?? 0
        if (total >= prev) this.inc(labels, total - prev)
        else {
          this.remove(labels)
          this.inc(labels, total)
        }
        last.set(k, total)
      }
    },
  })
}

/**
 * The metrics of one service process.
 * @example
 * const metrics = new ShardkitMetrics({ registry })
 * const watcher = new StageWatcher(rt, { instanceId, metrics })
 * const store = new DualWriteStore({ runtime: rt, stage: watcher, metrics })
 * metrics.trackJournalDepth(rt)
 * app.get('/metrics', async () => registry.metrics())
 */
export class ShardkitMetrics implements DualWriteMetrics, WatcherMetrics {
  readonly registry: Registry
  private readonly writeSeconds: Histogram<string>
  private readonly writes: Counter<string>
  private readonly secondaryFailures: Counter<string>
  private readonly journalAppends: Counter<string>
  private readonly journalReplays: Counter<string>
  private readonly fenceRefusals: Counter<string>
  private lastHeartbeat: number | null = null
  private applied: StageState | undefined

  constructor(opts: ShardkitMetricsOptions = {}) {
    const registry = (this.registry = opts.registry ?? new Registry())
    const registers = [registry]
    this.writeSeconds = new Histogram({
      name: 'shardkit_dualwrite_write_seconds',
      help: 'Dual-write latency: the primary transaction (side="primary") and the copies to the secondaries (side="secondaries"), per stage',
      labelNames: ['stage', 'side', 'outcome'],
      buckets: [...(opts.buckets ?? DEFAULT_BUCKETS)],
      registers,
    })
    this.writes = new Counter({ name: 'shardkit_dualwrite_writes_total', help: 'Dual-write primary transactions by stage, primary side, operation and outcome', labelNames: ['stage', 'primary', 'op', 'outcome'], registers })
    this.secondaryFailures = new Counter({ name: 'shardkit_dualwrite_secondary_failures_total', help: 'Writes whose secondary copy failed (journaled for the drainer), by reason', labelNames: ['reason'], registers })
    this.journalAppends = new Counter({ name: 'shardkit_journal_appends_total', help: 'Journal rows written in primary transactions', registers })
    this.journalReplays = new Counter({ name: 'shardkit_journal_replays_total', help: 'Writes whose copies were made from the primary read again (the image was incomplete), by kind', labelNames: ['kind'], registers })
    this.fenceRefusals = new Counter({ name: 'shardkit_fence_refusals_total', help: 'Writes refused by the write fence (planned at an old stage version; retryable)', registers })
    // Every series exists from the first scrape, so a rate() has a zero to start from.
    this.journalReplays.inc({ kind: 'reread' }, 0)
    this.journalAppends.inc(0)
    this.fenceRefusals.inc(0)
    const self = this
    new Gauge({
      name: 'shardkit_stage_version',
      help: 'The stage version this instance has applied',
      registers,
      collect() {
        if (self.applied) this.set(self.applied.version)
      },
    })
    new Gauge({
      name: 'shardkit_stage_info',
      help: 'The stage this instance has applied (1 for the current stage)',
      labelNames: ['stage'],
      registers,
      collect() {
        this.reset()
        if (self.applied) this.set({ stage: self.applied.stage }, 1)
      },
    })
    new Gauge({
      name: 'shardkit_heartbeat_age_seconds',
      help: 'Seconds since this instance last wrote its stage heartbeat',
      registers,
      collect() {
        if (self.lastHeartbeat !== null) this.set((performance.now() - self.lastHeartbeat) / 1000)
      },
    })
  }

  primaryCommitted(stage: string, side: string, op: string, startedAt: number, journaled: boolean): void {
    this.writeSeconds.observe({ stage, side: 'primary', outcome: 'ok' }, (performance.now() - startedAt) / 1000)
    this.writes.inc({ stage, primary: side, op, outcome: 'ok' })
    if (journaled) this.journalAppends.inc()
  }

  primaryFailed(stage: string, side: string, op: string, startedAt: number, err: unknown): void {
    const refused = isShardkitError(err, 'FENCE_REJECTED')
    if (refused) this.fenceRefusals.inc()
    this.writeSeconds.observe({ stage, side: 'primary', outcome: refused ? 'fenced' : 'error' }, (performance.now() - startedAt) / 1000)
    this.writes.inc({ stage, primary: side, op, outcome: refused ? 'fenced' : codeOf(err) })
  }

  secondariesDone(stage: string, startedAt: number, outcome: { ok: boolean; reread: boolean; failures: readonly { code: string }[] } | { error: unknown }): void {
    const seconds = (performance.now() - startedAt) / 1000
    if ('error' in outcome) {
      this.writeSeconds.observe({ stage, side: 'secondaries', outcome: 'error' }, seconds)
      this.secondaryFailures.inc({ reason: codeOf(outcome.error) })
      return
    }
    this.writeSeconds.observe({ stage, side: 'secondaries', outcome: outcome.ok ? 'ok' : 'journaled' }, seconds)
    if (outcome.reread) this.journalReplays.inc({ kind: 'reread' })
    if (!outcome.ok) for (const reason of new Set(outcome.failures.map((f) => f.code || 'ERROR'))) this.secondaryFailures.inc({ reason })
  }

  stageApplied(state: StageState): void {
    this.applied = state
  }

  heartbeatWritten(): void {
    this.lastHeartbeat = performance.now()
  }

  /** Journal depth and oldest entry age per primary, read on scrape (bounded by the journal reader). */
  trackJournalDepth(rt: Runtime): void {
    const status = () => readJournalStatus(rt).catch(() => [])
    let pending: ReturnType<typeof status> | undefined
    // Both gauges are collected in one scrape: share one read.
    const once = () => (pending ??= status().finally(() => setTimeout(() => (pending = undefined), 0)))
    new Gauge({
      name: 'shardkit_journal_depth',
      help: 'Dual-write journal entries per primary database (copies owed to a secondary)',
      labelNames: ['primary'],
      registers: [this.registry],
      async collect() {
        for (const s of await once()) if (s.error === undefined) this.set({ primary: s.primary }, s.depth)
      },
    })
    new Gauge({
      name: 'shardkit_journal_oldest_age_seconds',
      help: 'Age of the oldest journal entry per primary database (0 when empty)',
      labelNames: ['primary'],
      registers: [this.registry],
      async collect() {
        for (const s of await once()) if (s.error === undefined) this.set({ primary: s.primary }, (s.oldestAgeMs ?? 0) / 1000)
      },
    })
  }

  /** The outbox relay's counters per outbox, read on scrape. */
  bindRelay(relay: { stats(): OutboxRelayStats[] }): void {
    const read = (f: 'published' | 'unroutable' | 'failed' | 'retried') => () => relay.stats().map((s): [Record<string, string>, number] => [{ outbox: s.outbox }, s[f]])
    mirroredCounter(this.registry, 'shardkit_relay_published_total', 'Events the relay published and the broker confirmed', ['outbox'], read('published'))
    mirroredCounter(this.registry, 'shardkit_relay_unroutable_total', 'Events the broker returned unroutable (retried later)', ['outbox'], read('unroutable'))
    mirroredCounter(this.registry, 'shardkit_relay_failed_total', 'Publishes that failed (nack, timeout, broken connection)', ['outbox'], read('failed'))
    mirroredCounter(this.registry, 'shardkit_relay_retried_total', 'Held events (refused by a full queue or unroutable) sent later and confirmed', ['outbox'], read('retried'))
    new Gauge({
      name: 'shardkit_relay_held',
      help: 'Events handed off from the outbox head but still owed to a target that refused them (the retry table)',
      labelNames: ['outbox'],
      registers: [this.registry],
      collect() {
        for (const s of relay.stats()) this.set({ outbox: s.outbox }, s.owed)
      },
    })
    new Gauge({
      name: 'shardkit_relay_holding',
      help: 'Whether this relay holds the lease of an outbox (1) or not (0)',
      labelNames: ['outbox'],
      registers: [this.registry],
      collect() {
        for (const s of relay.stats()) this.set({ outbox: s.outbox }, s.holding ? 1 : 0)
      },
    })
  }

  /** An order-event consumer's counters, read on scrape. */
  bindConsumer(consumer: { readonly queue: string; readonly counters: Readonly<ConsumerCounters> }): void {
    const kinds = ['handled', 'duplicates', 'stale', 'gaps', 'waited', 'failures', 'malformed', 'unvouched'] as const
    this.consumers.push(consumer)
    if (this.consumers.length > 1) return
    mirroredCounter(this.registry, 'shardkit_consumer_events_total', 'Order events seen by consumers, by queue and outcome (unvouched: possibly handled before a Redis loss, reported instead of trusted)', ['queue', 'outcome'], () =>
      this.consumers.flatMap((c) => kinds.map((k): [Record<string, string>, number] => [{ queue: c.queue, outcome: k }, c.counters[k] ?? 0])),
    )
    const per = (f: 'redisLosses' | 'restored') => () => this.consumers.map((c): [Record<string, string>, number] => [{ queue: c.queue }, c.counters[f] ?? 0])
    mirroredCounter(this.registry, 'shardkit_consumer_redis_losses_total', 'Times a consumer found that Redis had lost its queue\'s memory (epoch marker gone)', ['queue'], per('redisLosses'))
    mirroredCounter(this.registry, 'shardkit_consumer_restored_total', 'Orders whose last handled version was restored into Redis from the durable store', ['queue'], per('restored'))
  }

  private readonly consumers: { readonly queue: string; readonly counters: Readonly<ConsumerCounters> }[] = []
}
