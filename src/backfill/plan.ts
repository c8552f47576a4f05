/**
 * Chunk sizing (pure): steer the rows per chunk toward a target time per
 * chunk, so a slow host gets smaller chunks (shorter lock windows) and a fast
 * one bigger (fewer round trips).
 */

export const MIN_CHUNK = 100
export const MAX_CHUNK = 5000

/** The next chunk size after one that took `ms` milliseconds. */
export function nextChunkSize(current: number, ms: number, targetMs: number): number {
  if (!(ms > 0)) return Math.min(MAX_CHUNK, current * 2)
  // Move at most 2x per step so one outlier does not swing the size.
  const ratio = Math.max(0.5, Math.min(2, targetMs / ms))
  return Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, Math.round(current * ratio)))
}
