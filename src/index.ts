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
export { LOGICAL_SHARDS, DIMENSIONS, shardOfKey, type Dimension } from './router/shard-function.js'
export {
  ID_EPOCH_MS,
  ID_TIME_LIMIT_MS,
  encodeId,
  decodeId,
  assertIdSyntax,
  compareIds,
  classifyId,
  type IdFields,
  type DecodedId,
} from './idgen/layout.js'
