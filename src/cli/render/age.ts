/** An age in ms as an operator reads it (`-` when there is none): 840 ms, 12.5 s, 7 min, 3.2 h. */
export function age(ms: number | null): string {
  if (ms === null) return '-'
  if (ms < 1_000) return `${ms} ms`
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${(ms / 3_600_000).toFixed(1)} h`
}
