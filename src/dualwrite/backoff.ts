/**
 * Retry delays for journal replays (pure: the random source is injected).
 * Exponential from `baseMs`, capped at `maxMs`, with "equal jitter" (half
 * fixed, half random) so that many entries failing together do not retry in
 * lockstep against a host that has just come back.
 */

export interface BackoffOptions {
  readonly baseMs: number
  readonly maxMs: number
}

/** Defaults: 200 ms doubling to 30 s. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 200, maxMs: 30_000 }

/**
 * The delay before retry number `attempt` (1 = the first retry).
 * @param random a number in [0, 1), e.g. Math.random
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt))
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(n - 1, 30))
  const half = exp / 2
  return Math.round(half + half * Math.min(Math.max(random(), 0), 1))
}
