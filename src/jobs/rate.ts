/**
 * Rate and ETA from recent samples (pure). A whole-run average misleads
 * (gh-ost PR #1231: inserts slow as the table grows, a throttle changes the
 * pace), so the rate is taken over the last minute of (time, rows) samples,
 * and only since the job's settings last changed or it resumed: the job
 * clears its samples then. Progress is capped at 100 %, and an ETA is given
 * only when there is a rate to project.
 *
 * A throttled job's ETA is projected at the pace it holds, not at the
 * window's average: the throttle catches up at most a second after a stall,
 * so a stall in the short window since a throttle change drags the average
 * down while the job then runs at its limit (CI saw "ETA 25 s, real 16.6 s").
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

/** Index of the first sample within `windowMs` of the newest (-1 when there are none). */
function windowStart(samples: readonly RateSample[], windowMs: number): number {
  const last = samples[samples.length - 1]
  return last ? samples.findIndex((s) => s[0] >= last[0] - windowMs) : -1
}

/** Rows per second over the samples' span (at most the window), or null with fewer than two samples a moment apart. */
export function recentRate(samples: readonly RateSample[], windowMs = RATE_WINDOW_MS): number | null {
  const from = windowStart(samples, windowMs)
  if (from < 0) return null
  const first = samples[from]!
  const last = samples[samples.length - 1]!
  if (last[0] - first[0] < 500) return null
  return Math.max(0, (last[1] - first[1]) / ((last[0] - first[0]) / 1000))
}

/**
 * The rate the job held for most of the window: the time-weighted median of
 * the rates between consecutive samples. A stall (no report for a while, then
 * one long, slow interval) that takes less than half the window's time does
 * not move it. Null with fewer than two samples a moment apart.
 */
export function heldRate(samples: readonly RateSample[], windowMs = RATE_WINDOW_MS): number | null {
  const from = windowStart(samples, windowMs)
  if (from < 0) return null
  const spans: Array<readonly [rate: number, ms: number]> = []
  let total = 0
  for (let i = from + 1; i < samples.length; i++) {
    const ms = samples[i]![0] - samples[i - 1]![0]
    if (ms <= 0) continue
    spans.push([Math.max(0, (samples[i]![1] - samples[i - 1]![1]) / (ms / 1000)), ms])
    total += ms
  }
  if (total < 500) return null
  spans.sort((a, b) => a[0] - b[0])
  let acc = 0
  for (const [rate, ms] of spans) {
    acc += ms
    if (acc >= total / 2) return rate
  }
  return spans[spans.length - 1]![0]
}

/**
 * The rate an ETA is projected at. Unthrottled: the window's average (the
 * machine sets the pace, stalls included). Throttled: the rate held for most
 * of the window, never above the limit; a job that cannot reach its limit is
 * projected at what it holds. `average` is `recentRate(samples)`, passed when
 * the caller has it already.
 */
export function projectedRate(samples: readonly RateSample[], maxRowsPerSecond: number | null, average = recentRate(samples)): number | null {
  if (maxRowsPerSecond === null || average === null) return average
  const held = heldRate(samples)
  return held === null ? average : Math.min(maxRowsPerSecond, held)
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
