/**
 * The status document: one picture of the whole migration, built once in the
 * library (src/status/build.ts) and rendered by `shardctl status`, the status
 * page, `/api/status`, and `/metrics`. Its JSON is a contract: fields are
 * added, never renamed; `schemaVersion` changes only if one ever must.
 *
 * The rule that answers "N/A with no reason": **every field that is null has
 * an entry in its own object's `why`**, in words an operator can act on
 * (`backfill not started`, `Redis unreachable: shown from the control
 * database`). Row counts are exact (counted over key ranges, kept in
 * checkpoints), never `information_schema` estimates; progress never passes
 * 100 %; the ETA comes from the rate over the last minute.
 */
import type { Stage } from '../cutover/stages.js'
import type { Pair } from '../verify/compare.js'

/** The version of this document's shape. */
export const STATUS_SCHEMA_VERSION = 1

/** Why each null field of an object is null (field name -> reason). */
export type Why = Record<string, string>

/** One source the document reads. */
export interface SourceState {
  readonly ok: boolean
  /** The driver's error code, when it did not answer. */
  readonly error: string | null
  readonly why: Why
}

/** The states a logical shard can be in (the heatmap's legend). */
export const SHARD_STATES = ['pending', 'copying', 'copied', 'verified', 'mismatch', 'error', 'paused'] as const
/** One shard's state. */
export type ShardState = (typeof SHARD_STATES)[number]

/** Where the cutover stands. */
export interface StageSection {
  readonly stage: Stage
  readonly version: number
  readonly readPercent: number
  readonly changedAt: string
  /** When the current stage (not a ramp step) was entered, and by whom (the audit log). */
  readonly enteredAt: string | null
  readonly enteredBy: string | null
  /** Where the stage was read: Redis (what the fleet follows), else the control database's durable copy. */
  readonly source: 'redis' | 'control-db' | 'default'
  /** All stages in order (the page's stepper). */
  readonly stages: readonly Stage[]
  /** Redis, the durable copy and the fences disagree (the next move recovers). */
  readonly problem: string | null
  readonly why: Why
}

/** One live service instance, as its heartbeat says. */
export interface InstanceView {
  readonly instanceId: string
  readonly version: number
  readonly stage: Stage | null
  readonly host: string | null
  readonly pid: number | null
  /** True when it applied the current stage version. */
  readonly acknowledged: boolean
  readonly heartbeatAgeMs: number | null
  readonly expiresInMs: number
  readonly why: Why
}

/** Every live instance (null with Redis down: only Redis knows them). */
export interface InstancesSection {
  readonly list: readonly InstanceView[] | null
  readonly live: number | null
  readonly behind: number | null
  readonly why: Why
}

/** Who runs a cutover move now. */
export interface RunLockSection {
  readonly holder: { readonly actor: string; readonly host: string; readonly pid: number; readonly since: string } | null
  readonly why: Why
}

/** The operator's settings of a job (src/jobs/settings.ts). */
export interface JobSettingsView {
  readonly paused: boolean
  readonly maxRowsPerSecond: number | null
  readonly chunkSize: number | null
  readonly concurrency: number | null
  readonly updatedAt: string | null
  readonly updatedBy: string | null
  readonly pausedAt: string | null
  readonly throttledAt: string | null
  readonly why: Why
}

/** The running (or last) run of a job, as it reported. */
export interface JobRunView {
  readonly runId: string
  readonly scope: string
  /** `running`, `paused`, `finished`, `failed`, `stopped`, or `stale` (running but silent for too long). */
  readonly state: 'running' | 'paused' | 'finished' | 'failed' | 'stopped' | 'stale'
  readonly host: string
  readonly pid: number
  readonly startedAt: string
  readonly updatedAt: string
  /** Age of the last report, by the control server's clock. */
  readonly reportAgeMs: number
  readonly finishedAt: string | null
  readonly chunks: number
  readonly chunkSize: number | null
  readonly concurrency: number | null
  readonly maxRowsPerSecond: number | null
  readonly message: string | null
  readonly why: Why
}

/** One dimension's backfill checkpoint. */
export interface BackfillDimensionView {
  readonly state: 'not-started' | 'running' | 'complete'
  readonly rowsCopied: number
  readonly updatedAt: string | null
  readonly completedAt: string | null
  readonly why: Why
}

/** The backfill: exact rows, the recent rate, the ETA, its run and its settings. */
export interface BackfillSection {
  readonly state: 'not-started' | 'running' | 'paused' | 'stopped' | 'failed' | 'stale' | 'complete' | 'unknown'
  readonly dimensions: { readonly user: BackfillDimensionView; readonly merchant: BackfillDimensionView } | null
  readonly rowsDone: number | null
  readonly rowsTotal: number | null
  /** 0..100, one decimal, never above 100. */
  readonly percent: number | null
  readonly rowsPerSecond: number | null
  readonly etaSeconds: number | null
  readonly etaAt: string | null
  readonly job: JobRunView | null
  readonly settings: JobSettingsView | null
  readonly why: Why
}

/** One recorded verify run, seen from one pair. */
export interface VerifyRunView {
  readonly runId: string
  readonly mode: 'full' | 'since'
  readonly since: string | null
  readonly dimension: string
  readonly startedAt: string
  readonly finishedAt: string
  readonly clean: boolean
  readonly differences: number
  readonly rowsCompared: number
  /** True when it started after the current stage was entered (what the cutover guard asks). */
  readonly countsForStage: boolean | null
  readonly why: Why
}

/** The last verify of each pair, and a running verify. */
export interface VerifySection {
  /** The last run that compared each pair. */
  readonly pairs: Readonly<Record<Pair, VerifyRunView | null>>
  readonly last: VerifyRunView | null
  readonly job: JobRunView | null
  readonly rowsDone: number | null
  readonly rowsPerSecond: number | null
  readonly settings: JobSettingsView | null
  readonly why: Why
}

/** One logical shard: its state and figures (a heatmap cell). */
export interface ShardView {
  readonly shard: number
  readonly state: ShardState
  /** Why it is in this state, in one line (the page's hover). */
  readonly reason: string
  readonly host: string
  readonly database: string
  readonly table: string
  /** Differences the last verify of this dimension found in this shard. */
  readonly differences: number | null
  readonly why: Why
}

/** The 2 x 120 logical shards and the counts per state. */
export interface ShardsSection {
  readonly user: readonly ShardView[]
  readonly merchant: readonly ShardView[]
  readonly counts: { readonly user: Record<ShardState, number>; readonly merchant: Record<ShardState, number>; readonly all: Record<ShardState, number> }
}

/** One primary database (legacy, or a user-dimension database): journal, outbox, fence. */
export interface PrimaryView {
  readonly primary: string
  readonly side: 'legacy' | 'user'
  readonly host: string
  readonly journalDepth: number | null
  readonly journalOldestAgeMs: number | null
  readonly outboxDepth: number | null
  readonly outboxOldestAgeMs: number | null
  readonly outboxPublishedLastMinute: number | null
  readonly relay: { readonly holder: string; readonly token: number; readonly expiresInMs: number } | null
  readonly fence: { readonly state: 'open' | 'raised' | 'missing' | 'unreachable'; readonly version: number | null }
  readonly error: string | null
  readonly why: Why
}

/** The dual-write journal over every primary database. */
export interface JournalSection {
  readonly depth: number | null
  readonly oldestAgeMs: number | null
  readonly why: Why
}

/** The events outbox over every primary database. */
export interface OutboxSection {
  readonly depth: number | null
  /** The oldest unpublished event's age over all outboxes (the relay's lag). */
  readonly lagMs: number | null
  readonly publishedLastMinute: number | null
  /** Distinct relay lease holders with a live lease. */
  readonly relayHolders: readonly string[]
  readonly why: Why
}

/** A part of the migration that has no command yet. */
export interface NotYetSection {
  readonly inProgress: readonly unknown[] | null
  readonly why: Why
}

/** The whole document (`status --json`, `/api/status`). */
export interface StatusDocument {
  readonly schemaVersion: typeof STATUS_SCHEMA_VERSION
  readonly generatedAt: string
  /** How long building this document took. */
  readonly buildMs: number
  readonly sources: { readonly controlDb: SourceState; readonly redis: SourceState }
  readonly stage: StageSection
  readonly instances: InstancesSection
  readonly runLock: RunLockSection
  readonly backfill: BackfillSection
  readonly verify: VerifySection
  readonly shards: ShardsSection
  readonly primaries: readonly PrimaryView[]
  readonly journal: JournalSection
  readonly outbox: OutboxSection
  readonly moves: NotYetSection
  readonly schemaChanges: NotYetSection
  /** What is wrong, most urgent first. */
  readonly problems: readonly string[]
  /** What to do next, in one line. */
  readonly nextStep: string
}
