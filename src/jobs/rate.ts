/**
 * Rate and ETA from recent samples (pure). A whole-run average misleads
 * (gh-ost PR #1231: inserts slow as the table grows, a throttle changes the
 * pace), so the rate is taken over the last minute of (time, rows) samples,
 * and only since the job's settings last changed or it resumed: the job
 * clears its samples then. Progress is capped at 100 %, and an ETA is given
 * only when there is a rate to project.
 */

/** One sample: the job's clock in ms and rows done at that time. */
export type RateSample = readonly [atMs: number, rows: number]

/** Samples kept for the rate (a little over the one-minute window, so a full minute is always covered). */
export const RATE_WINDOW_MS = 60_000

/** Drops samples older than the window before the newest, keeping one just outside it. */
export function trimSamples(samples: RateSample[], windowMs = RATE_WINDOW_MS): RateSample[] {
  const last = samples[samples.length - 1]
  if (!last) return samples
  let i = 0
  while (i + 1 < samples.length && samples[i + 1]![0] <= last[0] - windowMs) i++
  return samples.slice(i)
}

/** Rows per second over the samples' span (at most the window), or null with fewer than two samples a moment apart. */
export function recentRate(samples: readonly RateSample[], windowMs = RATE_WINDOW_MS): number | null {
  const last = samples[samples.length - 1]
  if (!last) return null
  let first: RateSample | undefined
  for (const s of samples) {
    if (s[0] >= last[0] - windowMs) {
      first = s
      break
    }
  }
  if (!first || last[0] - first[0] < 500) return null
  return Math.max(0, (last[1] - first[1]) / ((last[0] - first[0]) / 1000))
}

/** Progress as a share 0..1, never above 1 (rows inserted during the copy can push done past the total counted at its start). */
export function progressShare(done: number, total: number | null): number | null {
  if (total === null) return null
  if (total <= 0) return 1
  return Math.min(1, Math.max(0, done / total))
}

/** Seconds left at `rate`, or null when there is nothing to project from. */
export function etaSeconds(done: number, total: number | null, rate: number | null): number | null {
  if (total === null || rate === null || rate <= 0) return null
  return Math.max(0, (total - Math.min(done, total)) / rate)
}
