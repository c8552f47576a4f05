/**
 * The toolkit's logger: pino JSON lines on stderr (stdout is for results).
 * Library classes take a `Logger` and default to a silent one.
 */
import { pino, type Logger } from 'pino'

export type { Logger } from 'pino'

/** A pino logger writing JSON lines to stderr. */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'shardkit',
      level: opts.level ?? 'info',
      redact: { paths: ['password', '*.password', 'url', '*.url'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: true }),
  )
}

/** A logger that writes nothing: the default for library classes. */
export const silentLogger: Logger = pino({ level: 'silent' })
