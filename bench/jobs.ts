/**
 * `npm run bench:jobs`: what job control costs a backfill. The gate is
 * called before every chunk (settings read at most every 200 ms, progress
 * written at most once a second); the figure that does not drown in a shared
 * machine's noise is the time spent inside the gate, measured directly, as a
 * share of the run. Beside it, backfills with and without job control,
 * alternated (plain, controlled, controlled, plain, ...), so drift in the
 * machine's pace falls on both; the ratio of their medians is printed.
 *
 * Env: BENCH_ROWS (default 60,000), BENCH_ROUNDS (default 3), BENCH_CHUNK (default 1000).
 */
import { runBackfill } from '../src/backfill/index.js'
import { openJobControl, type ChunkGate } from '../src/jobs/control.js'
import { openBenchFleet, serverSettings, truncateShards } from './support/bench-fleet.js'

const ROWS = Number(process.env.BENCH_ROWS ?? 60_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CHUNK = Number(process.env.BENCH_CHUNK ?? 1000)
const log = (s: string) => process.stderr.write(s + '\n')
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const f = await openBenchFleet('jobs', ROWS, { log })
const rate: Record<'plain' | 'controlled', number[]> = { plain: [], controlled: [] }
const share: number[] = []
const perChunk: number[] = []
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? (['plain', 'controlled'] as const) : (['controlled', 'plain'] as const)) {
      await truncateShards(f)
      if (mode === 'plain') {
        const r = await runBackfill(f.rt, { restart: true, chunkSize: CHUNK })
        rate.plain.push(r.rowsPerSecond)
        log(`  plain: ${Math.round(r.rowsPerSecond)} rows/s`)
        continue
      }
      const jc = await openJobControl(f.rt, 'backfill', { scope: 'user+merchant' })
      let inGate = 0
      let calls = 0
      const timed: ChunkGate = {
        async betweenChunks(p, settle) {
          const t = performance.now()
          try {
            return await jc.betweenChunks(p, settle)
          } finally {
            inGate += performance.now() - t
            calls++
          }
        },
      }
      const r = await runBackfill(f.rt, { restart: true, chunkSize: CHUNK, control: timed })
      await jc.finish('finished')
      rate.controlled.push(r.rowsPerSecond)
      share.push(inGate / (r.seconds * 1000))
      perChunk.push(inGate / calls)
      log(`  controlled: ${Math.round(r.rowsPerSecond)} rows/s; ${calls} gate calls, ${inGate.toFixed(0)} ms inside the gate`)
    }
  }
  const line = `job control: time inside the gate ${(median(share) * 100).toFixed(1)} % of a backfill (median of ${ROUNDS}; ${median(perChunk).toFixed(2)} ms per ${CHUNK}-row chunk); backfill with job control ${Math.round(median(rate.controlled))} rows/s vs without ${Math.round(median(rate.plain))} rows/s -> ${(median(rate.controlled) / median(rate.plain)).toFixed(2)}x (medians, ${ROWS} rows)`
  log(`\n${await serverSettings(f.admin)}`)
  process.stdout.write(line + '\n')
} finally {
  await f.close()
}
