/**
 * The CLI side of a controlled job (`shardctl backfill`, `shardctl verify`):
 * opens job control with the flags the operator actually typed (a default
 * never overwrites a setting stored by `throttle`), says on stderr when a
 * stored setting applies (a pause left from before a restart, a throttle),
 * records how the run ended and sends the notifications of its end.
 */
import type { Command } from 'commander'
import type { Runtime } from '../runtime/runtime.js'
import { openJobControl, type ChunkProgress, type JobControl } from '../jobs/control.js'
import type { JobKind } from '../jobs/settings.js'
import { createNotifier, type Notifier } from '../notify/notifier.js'
import { isShardkitError } from '../errors.js'
import type { CliIO } from './io.js'

/** A running job's control and notifier. */
export interface CliJob {
  /** Absent when the fleet lacks the job tables (provisioned before job control): the job runs uncontrolled. */
  readonly control: JobControl | undefined
  readonly notifier: Notifier
  /** Records a failed run (and notifies, for a backfill). Never throws. */
  failed(err: unknown, progress?: ChunkProgress): Promise<void>
}

/** The value of an option only when it was typed on the command line (not its default). */
export function typed<T>(cmd: Command, name: string, value: T): T | undefined {
  return cmd.getOptionValueSource(name) === 'cli' ? value : undefined
}

/**
 * Opens job control for one CLI run.
 * @param initial settings typed on the command line (undefined: keep the stored one; null: clear it)
 */
export async function startCliJob(io: CliIO, rt: Runtime, job: JobKind, o: { scope: string; signal: AbortSignal; initial: { maxRowsPerSecond?: number | null; chunkSize?: number | null; concurrency?: number | null } }): Promise<CliJob> {
  const notifier = createNotifier(rt.config.notify, io.logger)
  const minutes = rt.config.notify?.throttledMinutes
  let control: JobControl
  try {
    control = await openJobControl(rt, job, {
      scope: o.scope,
      logger: io.logger,
      signal: o.signal,
      initial: o.initial,
      ...(minutes !== undefined && job === 'backfill' ? { throttledNoticeMs: minutes * 60_000 } : {}),
      onNotice: (n) => {
        if (n.kind === 'throttled-long') void notifier.send('backfill-throttled', `backfill throttled at ${n.maxRowsPerSecond} rows/s for ${n.minutes} min`, { maxRowsPerSecond: n.maxRowsPerSecond, minutes: n.minutes })
      },
    })
  } catch (err) {
    if (!isShardkitError(err, 'PRECONDITION_FAILED')) throw err
    // A fleet provisioned before job control: the job runs as before (its own flags), and says how to get control.
    io.logger.warn({ job }, `${job}: runs without pause/resume/throttle: ${err.message}`)
    return {
      control: undefined,
      notifier,
      async failed(e) {
        if (job === 'backfill' && !o.signal.aborted) await notifier.send('backfill-failed', `backfill failed (${String((e as { code?: unknown })?.code ?? 'ERROR')})`, { scope: o.scope })
      },
    }
  }
  const s = control.settings()
  if (s.paused) io.logger.warn({ job, pausedAt: s.pausedAt, by: s.updatedBy }, `${job}: starts paused (set by ${s.updatedBy ?? 'someone'} at ${s.pausedAt ?? '?'}); run \`shardctl ${job} resume\``)
  if (s.maxRowsPerSecond !== null || s.chunkSize !== null || s.concurrency !== null) {
    io.logger.info({ job, maxRowsPerSecond: s.maxRowsPerSecond, chunkSize: s.chunkSize, concurrency: s.concurrency }, `${job}: settings from the control database apply (change them with \`shardctl ${job} throttle\`)`)
  }
  return {
    control,
    notifier,
    async failed(err, progress) {
      const code = String((err as { code?: unknown })?.code ?? 'ERROR')
      await control.finish(o.signal.aborted ? 'stopped' : 'failed', progress, code)
      if (job === 'backfill' && !o.signal.aborted) await notifier.send('backfill-failed', `backfill failed (${code})`, { code, scope: o.scope })
    },
  }
}
