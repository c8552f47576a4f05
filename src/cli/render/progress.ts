/**
 * Progress for long commands: a cli-progress bar on a TTY, pino JSON lines
 * (at most one every `intervalMs`) otherwise. Always on stderr.
 */
import cliProgress from 'cli-progress'
import type { CliIO } from '../io.js'

export interface ProgressReporter {
  update(done: number, total: number, extra?: Record<string, string | number | null>): void
  stop(): void
}

export function createProgress(io: CliIO, label: string, opts: { intervalMs?: number } = {}): ProgressReporter {
  if (io.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}`, stream: io.stderr as NodeJS.WriteStream, hideCursor: true },
      cliProgress.Presets.shades_classic,
    )
    let started = false
    return {
      update(done, total, extra = {}) {
        if (!started) {
          bar.start(total, done, { rate: 0 })
          started = true
        }
        bar.setTotal(total)
        bar.update(done, { rate: extra.rowsPerSecond ?? 0 })
      },
      stop() {
        if (started) bar.stop()
      },
    }
  }
  const every = opts.intervalMs ?? 2_000
  let last = 0
  return {
    update(done, total, extra = {}) {
      const now = Date.now()
      if (now - last < every && done < total) return
      last = now
      io.logger.info({ progress: label, done, total, percent: total ? Math.round((done / total) * 1000) / 10 : 100, ...extra }, `${label} progress`)
    },
    stop() {},
  }
}
