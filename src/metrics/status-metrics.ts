/**
 * The status document as Prometheus gauges (what `shardctl serve` exposes on
 * `/metrics`): the same document the page and `status --json` render, so the
 * three never disagree. Values are set at scrape time from the latest
 * document; a value the document leaves null (with its reason) is left out
 * rather than shown as 0.
 */
import { Gauge, type Registry } from 'prom-client'
import { SHARD_STATES, type StatusDocument } from '../status/document.js'
import { STAGES } from '../cutover/stages.js'

type G = Gauge<string>

/**
 * Registers the fleet gauges on `registry`, read from `current()` at scrape.
 * @example registerStatusMetrics(registry, () => poller.latest)
 */
export function registerStatusMetrics(registry: Registry, current: () => StatusDocument | undefined): void {
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: G, d: StatusDocument) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const d = current()
        this.reset()
        if (d) fill(this, d)
      },
    })
  const set = (g: G, labels: Record<string, string>, v: number | null | undefined) => {
    if (v !== null && v !== undefined) g.set(labels, v)
  }
  gauge('shardkit_fleet_stage_version', 'The cutover stage version the fleet follows', [], (g, d) => g.set(d.stage.version))
  gauge('shardkit_fleet_stage', 'The cutover stage (1 for the current one, 0 for the others)', ['stage'], (g, d) => {
    for (const s of STAGES) g.set({ stage: s }, s === d.stage.stage ? 1 : 0)
  })
  gauge('shardkit_fleet_read_percent', 'Share of users whose reads go to the shards', [], (g, d) => g.set(d.stage.readPercent))
  gauge('shardkit_source_up', 'Whether a source of the status answered (1) or not (0)', ['source'], (g, d) => {
    g.set({ source: 'control-db' }, d.sources.controlDb.ok ? 1 : 0)
    g.set({ source: 'redis' }, d.sources.redis.ok ? 1 : 0)
  })
  gauge('shardkit_fleet_instances', 'Live service instances, and those behind the current stage version', ['state'], (g, d) => {
    set(g, { state: 'live' }, d.instances.live)
    set(g, { state: 'behind' }, d.instances.behind)
  })
  gauge('shardkit_instance_heartbeat_age_seconds', 'Age of each live instance heartbeat', ['instance'], (g, d) => {
    for (const i of d.instances.list ?? []) set(g, { instance: i.instanceId }, i.heartbeatAgeMs === null ? null : i.heartbeatAgeMs / 1000)
  })
  gauge('shardkit_instance_stage_version', 'The stage version each live instance applied', ['instance'], (g, d) => {
    for (const i of d.instances.list ?? []) g.set({ instance: i.instanceId }, i.version)
  })
  gauge('shardkit_backfill_rows', 'Backfill rows done and total (exact: key ranges and checkpoints)', ['kind'], (g, d) => {
    set(g, { kind: 'done' }, d.backfill.rowsDone)
    set(g, { kind: 'total' }, d.backfill.rowsTotal)
  })
  gauge('shardkit_backfill_progress_ratio', 'Backfill progress 0..1 (never above 1)', [], (g, d) => set(g, {}, d.backfill.percent === null ? null : d.backfill.percent / 100))
  gauge('shardkit_backfill_rows_per_second', 'Backfill rate over the last minute', [], (g, d) => set(g, {}, d.backfill.rowsPerSecond))
  gauge('shardkit_backfill_eta_seconds', 'Backfill time left at the recent rate', [], (g, d) => set(g, {}, d.backfill.etaSeconds))
  gauge('shardkit_job_paused', 'Whether a job is paused by an operator', ['job'], (g, d) => {
    if (d.backfill.settings) g.set({ job: 'backfill' }, d.backfill.settings.paused ? 1 : 0)
    if (d.verify.settings) g.set({ job: 'verify' }, d.verify.settings.paused ? 1 : 0)
  })
  gauge('shardkit_job_max_rows_per_second', 'A job\'s rows/s limit (absent when unthrottled)', ['job'], (g, d) => {
    set(g, { job: 'backfill' }, d.backfill.settings?.maxRowsPerSecond)
    set(g, { job: 'verify' }, d.verify.settings?.maxRowsPerSecond)
  })
  gauge('shardkit_shards', 'Logical shards per dimension and state', ['dimension', 'state'], (g, d) => {
    for (const dim of ['user', 'merchant'] as const) for (const s of SHARD_STATES) g.set({ dimension: dim, state: s }, d.shards.counts[dim][s])
  })
  gauge('shardkit_verify_differences', 'Differences the last verify of each pair found', ['pair'], (g, d) => {
    for (const [pair, v] of Object.entries(d.verify.pairs)) if (v) g.set({ pair }, v.differences)
  })
  gauge('shardkit_verify_last_finished_timestamp_seconds', 'When the last verify of each pair finished (Unix seconds)', ['pair'], (g, d) => {
    for (const [pair, v] of Object.entries(d.verify.pairs)) if (v) g.set({ pair }, Date.parse(v.finishedAt) / 1000)
  })
  gauge('shardkit_fleet_journal_depth', 'Dual-write journal entries per primary database', ['primary'], (g, d) => {
    for (const p of d.primaries) set(g, { primary: p.primary }, p.journalDepth)
  })
  gauge('shardkit_fleet_journal_oldest_age_seconds', 'Age of the oldest journal entry per primary database (0 when empty)', ['primary'], (g, d) => {
    for (const p of d.primaries) if (p.journalDepth !== null) g.set({ primary: p.primary }, (p.journalOldestAgeMs ?? 0) / 1000)
  })
  gauge('shardkit_outbox_depth', 'Unpublished order events per outbox', ['primary'], (g, d) => {
    for (const p of d.primaries) set(g, { primary: p.primary }, p.outboxDepth)
  })
  gauge('shardkit_outbox_lag_seconds', 'Age of the oldest unpublished event over all outboxes (0 when none waits)', [], (g, d) => set(g, {}, d.outbox.depth === null ? null : (d.outbox.lagMs ?? 0) / 1000))
  gauge('shardkit_status_generated_timestamp_seconds', 'When the latest status document was built (Unix seconds)', [], (g, d) => g.set(Date.parse(d.generatedAt) / 1000))
  gauge('shardkit_status_build_seconds', 'How long the latest status document took to build', [], (g, d) => g.set(d.buildMs / 1000))
}
