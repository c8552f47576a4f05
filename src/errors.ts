/**
 * One error class for the whole toolkit. Every error carries a stable `code`
 * (scripts and the CLI branch on it, never on message text), a message that
 * says what to do next, the original error as `cause`, and `details` that hold
 * identifiers only: never row data, SQL parameters or passwords.
 */

/** Stable error codes. Add new codes here; never rename one that shipped. */
export type ShardkitErrorCode =
  // bad input: exit 2
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'ID_INVALID'
  | 'SHARD_KEY_IMMUTABLE'
  | 'SQL_INPUT_INVALID'
  // refused precondition: exit 3
  | 'PRECONDITION_FAILED'
  | 'SCATTER_REFUSED'
  | 'ALREADY_RUNNING'
  | 'PROVISION_CONFLICT'
  | 'CUTOVER_GUARD_FAILED'
  | 'CUTOVER_ABORTED'
  | 'FENCE_REJECTED'
  | 'ORDER_EXISTS'
  | 'ORDER_NOT_FOUND'
  | 'VERSION_CONFLICT'
  | 'DIALECT_UNSUPPORTED'
  // inconsistency found: exit 4
  | 'INCONSISTENT'
  // everything else: exit 1
  | 'ID_CLOCK_BEHIND'
  | 'ID_TIME_EXHAUSTED'
  | 'ID_WORKERS_EXHAUSTED'
  | 'ID_LEASE_LOST'
  | 'ROUTE_NOT_FOUND'
  | 'SHARD_TIMEOUT'
  | 'SHARD_FAILED'
  | 'DB_ERROR'
  | 'REDIS_ERROR'
  | 'ABORTED'
  | 'CLOSED'
  | 'INTERNAL'

/** Identifiers that help an operator find the problem. No row data, no secrets. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null | readonly (string | number)[]>>

export class ShardkitError extends Error {
  override readonly name = 'ShardkitError'
  readonly code: ShardkitErrorCode
  readonly details: ErrorDetails
  /** True when the same call may succeed if retried (a fence, a timeout). */
  readonly retryable: boolean

  constructor(
    code: ShardkitErrorCode,
    message: string,
    details: ErrorDetails = {},
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = details
    this.retryable = options.retryable ?? false
  }

  toJSON(): { code: ShardkitErrorCode; message: string; details: ErrorDetails; retryable: boolean } {
    return { code: this.code, message: this.message, details: this.details, retryable: this.retryable }
  }
}

/** True when `err` is a ShardkitError, optionally with the given code. */
export function isShardkitError(err: unknown, code?: ShardkitErrorCode): err is ShardkitError {
  return err instanceof ShardkitError && (code === undefined || err.code === code)
}

const EXIT_CODES: Partial<Record<ShardkitErrorCode, number>> = {
  USAGE: 2,
  CONFIG_INVALID: 2,
  CONFIG_NOT_FOUND: 2,
  ID_INVALID: 2,
  SHARD_KEY_IMMUTABLE: 2,
  SQL_INPUT_INVALID: 2,
  PRECONDITION_FAILED: 3,
  SCATTER_REFUSED: 3,
  PROVISION_CONFLICT: 3,
  CUTOVER_GUARD_FAILED: 3,
  CUTOVER_ABORTED: 3,
  FENCE_REJECTED: 3,
  ORDER_EXISTS: 3,
  ORDER_NOT_FOUND: 3,
  VERSION_CONFLICT: 3,
  DIALECT_UNSUPPORTED: 3,
  ALREADY_RUNNING: 5,
  INCONSISTENT: 4,
  // stopped by a signal after a checkpoint; the same command resumes
  ABORTED: 130,
}

/**
 * The CLI's exit code for an error: 2 usage/config, 3 refused precondition,
 * 4 inconsistency found, 5 another run holds the lock, 1 anything else.
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof ShardkitError) return EXIT_CODES[err.code] ?? 1
  return 1
}
