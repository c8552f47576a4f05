/**
 * shardkit's public API. Everything an embedding service or script may use is
 * exported here by name; anything else is internal.
 */
export { ShardkitError, isShardkitError, exitCodeFor, type ShardkitErrorCode, type ErrorDetails } from './errors.js'
export { redactUrl, redactText } from './redact.js'
export { parseConfig, configSchema, type ShardkitConfig, type RawConfig, type ShardPlacement, type DimensionConfig, type ConfigProblem } from './config/schema.js'
export { loadConfig, resolveConfigPath, type LoadConfigOptions } from './config/load.js'
export { buildConfig, splitShards, type BuildConfigOptions } from './config/init.js'
export { openRuntime, type Runtime, type RuntimeOptions } from './runtime/runtime.js'
export { createMysqlPool, quoteIdent, qualified, type MysqlPool, type MysqlConnection } from './runtime/mysql.js'
export { createLogger, silentLogger, type Logger } from './runtime/logger.js'
export { LOGICAL_SHARDS, DIMENSIONS, shardOfKey, routeKey, MAX_KEY_DIGITS, type Dimension, type UnroutableReason } from './router/shard-function.js'
export {
  dialectOf,
  parseServerVersion,
  configuredDialect,
  describeDialect,
  boundedSelect,
  shareLockClause,
  updateLockClause,
  supportsNowait,
  upsertRowAlias,
  upsertValueRef,
  instantAddColumn,
  collationFor,
  DIALECT_NAMES,
  type Dialect,
  type DialectSetting,
} from './runtime/dialect.js'
export { checkFleet, type FleetCheck, type FleetProblem } from './config/fleet-check.js'
export {
  ID_EPOCH_MS,
  ID_TIME_LIMIT_MS,
  encodeId,
  decodeId,
  assertIdSyntax,
  compareIds,
  classifyId,
  shardOfId,
  type IdFields,
  type DecodedId,
} from './idgen/layout.js'
export {
  DualWriteStore,
  type DualWriteStoreOptions,
  type StageSource as DualWriteStageSource,
  type OrderRow,
  type OrderEventInput,
  type PrimaryWriteContext,
  type DualWriteStats,
  type OrderPage,
} from './dualwrite/store.js'
export { readJournalDepth, readJournalStatus, drainJournal, type PrimaryJournalStatus, type DrainOptions, type DrainResult } from './dualwrite/journal.js'
export { JournalDrainer, type JournalDrainerOptions } from './dualwrite/drainer.js'
export { provision, type ProvisionReport, type ProvisionOptions } from './provision/index.js'
export { StageWatcher, type StageWatcherOptions } from './cutover/watcher.js'
export { STAGES, stagePolicy, readsFromShards, type Stage, type StageState, type StagePolicy } from './cutover/stages.js'
export { moveStage, type MoveOptions, type MoveResult, type StepReport } from './cutover/steps.js'
export { readCutoverStatus, type CutoverStatus } from './cutover/status.js'
export { openIdGenerator, IdGenerator, type IdGeneratorOptions, type IdGeneratorStatus } from './idgen/generator.js'
export { MirroredLeaseStore, RedisLeaseMirror, type MirrorClaim } from './idgen/mirror.js'
export { MysqlLeaseStore, ensureLeaseSchema, LEASE_TABLE, WORKER_COUNT, type LeaseStore, type LeaseRequest, type LeaseGrant } from './idgen/lease.js'
export { systemClock, offsetClock, ManualClock, type Clock } from './idgen/clock.js'
export { checkFence, readFences, FENCE_TABLE, type FenceReading } from './cutover/fence.js'
export { readStageState, readHistory, readLiveInstances, type AuditEntry, type InstanceAck } from './cutover/switch-store.js'
export { assertBackfillAllowed, evaluateGuards, collectGuardInputs, type GuardInputs, type GuardResult, type GuardName, type GuardReaders } from './cutover/guards.js'
export { planTransition, type MoveKind, type MoveTarget } from './cutover/transitions.js'
export { planStatement, layoutOf, bindParams, type StatementPlan, type PlanTarget, type LegacyIdLookup } from './sql/planner.js'
export { mergeShardRows, mergeAffectedRows, type ShardRows, type ResultField } from './sql/merge-rows.js'
export type { MergeSpec, ColumnRef, Combine } from './sql/merge-spec.js'
export { SqlLinter, classifyStatement, type LintReport, type DigestReport } from './sql/linter.js'
export { classifyAst, SQL_CLASSES, type SqlClass, type SqlLayout, type Classification } from './sql/classify.js'
export { digestOf, type Digest } from './sql/digest.js'
export { readStatements, type LogFormat, type LoggedStatement } from './sql/log-readers.js'
export { lintSchema, readSchemaFacts, type SchemaFacts, type SchemaFinding } from './sql/schema-lint.js'
export { runBackfill, readBackfillStatus, type BackfillOptions, type BackfillProgress, type BackfillResult, type BackfillStatus } from './backfill/index.js'
export { runVerify, readLastVerify, recordVerifyRun, type VerifyOptions, type VerifyResult, type VerifySummary, type Difference } from './verify/index.js'
export { routeSync, resolveRoute, type Route, type RouteKey } from './router/router.js'
export { scatter, queryOrders, SCATTER_MAX_LIMIT, SCATTER_DEFAULTS, type ScatterOptions, type ScatterQuery, type ScatterResult, type FailedShard, type OrdersQuery, type ScatterFilter, type ScatterOrder, type FilterOp } from './router/scatter.js'
export { createOutboxHook, OutboxRelay, readEventsStatus, createOrderEventConsumer, createPartitionConsumers, createMysqlConsumerState, CONSUMER_STATE_TABLE, type ConsumerStateStore, type MysqlConsumerState, type UnvouchedEvent, type UnvouchedPolicy, orderEventQueueArguments, bindingKey, routingKeyOf, partitionOfUser, decodeEvent, encodeEvent, EVENT_TYPES, EVENT_PARTITIONS, type OrderEvent, type OrderEventType, type OutboxRelayOptions, type OrderEventConsumer, type OrderEventConsumerOptions, type OrderEventHandler, type PartitionConsumers, type PartitionConsumersOptions, type EventsStatus } from './events/index.js'
// Operator surface (issue 19): one status document, metrics, job control, notifications, the status server.
export { readStatus, type StatusOptions } from './status/build.js'
export { STATUS_SCHEMA_VERSION, SHARD_STATES, type StatusDocument, type ShardState, type ShardView } from './status/document.js'
export { renderStatusText, summaryLine } from './status/text.js'
export { ShardkitMetrics, type ShardkitMetricsOptions, type DualWriteMetrics, type WatcherMetrics } from './metrics/metrics.js'
export { registerStatusMetrics } from './metrics/status-metrics.js'
export { openJobControl, type JobControl, type JobControlOptions, type ChunkGate, type ChunkProgress } from './jobs/control.js'
export { changeJobSettings, readJobSettings, parseSettingValue, type JobKind, type JobSettings, type SettingsChange } from './jobs/settings.js'
export { createNotifier, type Notifier, type NotifyEvent, type NotifyKind, type NotifyOutcome } from './notify/notifier.js'
