/**
 * How the service answers failures: validation errors name the field, store
 * errors map to HTTP statuses by their stable code, and retryable ones (the
 * write fence during a switch, a deadlock, the stage not known yet) are
 * retried inside the request within a bounded budget so a client sees a
 * short delay instead of an error.
 */
import { isShardkitError, ShardkitError } from '../../src/index.js'

/** The JSON body of every error answer. */
export interface ErrorBody {
  readonly error: string
  readonly message: string
  readonly field?: string
}

/** An answer the routes throw on purpose (404, 409, 400 after validation). */
export class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string, readonly field?: string) {
    super(message)
  }
}

interface AjvError {
  readonly instancePath?: string
  readonly keyword?: string
  readonly message?: string
  readonly params?: Record<string, unknown>
}

/** The field an Ajv error is about, as a dotted path (`items.0.qty`). */
export function fieldOf(e: AjvError): string {
  const base = (e.instancePath ?? '').split('/').filter(Boolean).join('.')
  const p = e.params ?? {}
  const extra = (p.missingProperty ?? p.additionalProperty) as string | undefined
  return extra ? (base ? `${base}.${extra}` : extra) : base
}

/** A 400 body for fastify's validation error. `context` is body|params|querystring. */
export function validationBody(errors: readonly AjvError[], context: string | undefined): ErrorBody {
  const e = errors[0] ?? {}
  const field = fieldOf(e) || context || 'body'
  const what = e.keyword === 'additionalProperties' ? 'is not a known field' : e.keyword === 'required' ? 'is required' : (e.message ?? 'is invalid')
  const hint = e.keyword === 'format' && e.params?.format === 'int63' ? ' (a decimal string from 0 to 9223372036854775807, no leading zeros)' : ''
  return { error: 'VALIDATION', message: `${context ?? 'body'} field ${field} ${what}${hint}`, field }
}

const STATUS_OF: Partial<Record<string, number>> = {
  USAGE: 400,
  ID_INVALID: 400,
  SHARD_KEY_IMMUTABLE: 409,
  ORDER_NOT_FOUND: 404,
  ORDER_EXISTS: 409,
  VERSION_CONFLICT: 409,
  FENCE_REJECTED: 503,
  PRECONDITION_FAILED: 503,
  DB_ERROR: 503,
  REDIS_ERROR: 503,
  ID_CLOCK_BEHIND: 503,
  ID_LEASE_LOST: 503,
  ID_WORKERS_EXHAUSTED: 503,
  CLOSED: 503,
}

/** HTTP status and body for any error a handler threw. */
export function answerFor(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof HttpError) return { status: err.statusCode, body: { error: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } }
  if (err instanceof ShardkitError) {
    const field = typeof err.details.argument === 'string' ? err.details.argument : undefined
    const status = STATUS_OF[err.code] ?? 500
    return { status, body: { error: err.code, message: status >= 500 && status !== 503 ? 'internal error' : err.message, ...(field ? { field } : {}) } }
  }
  const fe = err as { statusCode?: number; code?: string; message?: string }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { error: fe.code ?? 'BAD_REQUEST', message: fe.message ?? 'bad request' } }
  }
  return { status: 500, body: { error: 'INTERNAL', message: 'internal error; see the service log' } }
}

/** Whether a retry of the whole operation may succeed (nothing was committed). */
export function isRetryable(err: unknown): boolean {
  if (!isShardkitError(err)) return false
  return err.retryable || err.code === 'FENCE_REJECTED'
}

/** Retry budget for retryable store errors. */
export interface RetryPolicy {
  /** Give up after this long (default 15000 ms: a fence is held for the journal drain and the flip). */
  readonly budgetMs: number
  /** First pause; doubles up to `maxDelayMs`. */
  readonly delayMs: number
  readonly maxDelayMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { budgetMs: 15_000, delayMs: 10, maxDelayMs: 250 }

/**
 * Runs `fn` again while it fails with a retryable error, until the budget is
 * spent. `attempt` starts at 0 so a caller can tell a retry from the first try.
 */
export async function withRetry<T>(policy: RetryPolicy, fn: (attempt: number) => Promise<T>, now: () => number = Date.now): Promise<T> {
  const start = now()
  let delay = policy.delayMs
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (!isRetryable(err) || now() - start + delay > policy.budgetMs) throw err
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(policy.maxDelayMs, delay * 2)
    }
  }
}
