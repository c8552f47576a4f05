/**
 * `shardctl status [--json] [--watch [--interval 2s]]`: the whole migration
 * in one document (src/status). `--json` prints it once; `--watch` redraws
 * it in place on a terminal, and prints one NDJSON document per interval
 * otherwise (or with --json), until Ctrl-C. Exit 0: status reports problems
 * in the document (`problems`, `nextStep`), it does not fail on them.
 */
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { readStatus } from '../../status/build.js'
import { renderStatusText } from '../../status/text.js'
import { sleep } from '../../runtime/sleep.js'
import { withRuntime } from '../context.js'
import { printJson, type CliIO } from '../io.js'

/**
 * Parses an interval: `2s`, `500ms`, `1m`, or a number of seconds.
 * @throws ShardkitError `USAGE` naming the option
 */
export function parseInterval(value: string, option = '--interval', { minMs = 200, maxMs = 3_600_000 } = {}): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim())
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1_000) : NaN
  if (!Number.isFinite(ms) || ms < minMs || ms > maxMs) {
    throw new ShardkitError('USAGE', `${option} must be a duration from ${minMs} ms to ${maxMs / 60_000} min, such as 2s, 500ms or 1m (got "${value}")`, { argument: option })
  }
  return Math.round(ms)
}

/** Registers `shardctl status`. */
export function registerStatusCommand(program: Command, io: CliIO): void {
  program
    .command('status')
    .description('the whole migration at once: stage, instances, run lock, backfill (exact rows, rate, ETA), 2 x 120 shards, verify, journal, outbox; every blank says why')
    .option('--json', 'print the status document as JSON (with --watch: one NDJSON line per interval)')
    .option('--watch', 'redraw every interval until Ctrl-C')
    .option('--interval <duration>', 'with --watch: how often (2s, 500ms, 1m)', '2s')
    .action(async (f: { json?: boolean; watch?: boolean; interval?: string }, cmd: Command) => {
      const interval = parseInterval(f.interval ?? '2s')
      if (!f.watch) {
        const doc = await withRuntime(io, cmd, (rt) => readStatus(rt))
        if (f.json) printJson(io, doc)
        else io.stdout.write(renderStatusText(doc).join('\n') + '\n')
        return
      }
      const tty = Boolean((io.stdout as NodeJS.WriteStream).isTTY) && !f.json
      const ac = new AbortController()
      const stop = () => ac.abort()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
      try {
        await withRuntime(io, cmd, async (rt) => {
          while (!ac.signal.aborted) {
            const started = performance.now()
            const doc = await readStatus(rt)
            if (tty) io.stdout.write(`\x1b[H\x1b[2J${renderStatusText(doc).join('\n')}\n`)
            else io.stdout.write(JSON.stringify(doc) + '\n')
            await sleep(Math.max(0, interval - (performance.now() - started)), ac.signal)
          }
        })
      } finally {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
      }
    })
}
