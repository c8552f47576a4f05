/**
 * What every command needs from the process: stdout for results, stderr for
 * logs and progress, and a logger. Passed in so e2e tests and the demo can
 * run commands in-process.
 */
import type { Writable } from 'node:stream'
import { createLogger, type Logger } from '../runtime/logger.js'

export interface CliIO {
  readonly stdout: Writable
  readonly stderr: Writable
  readonly env: Readonly<Record<string, string | undefined>>
  readonly cwd: string
  readonly logger: Logger
  readonly isTTY: boolean
  /** Where a confirmation is read from (a point of no return asks a person); absent: no terminal. */
  readonly stdin?: NodeJS.ReadableStream & { readonly isTTY?: boolean }
}

export function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    logger: createLogger({ level: process.env.SHARDKIT_LOG_LEVEL ?? 'info' }),
    isTTY: Boolean(process.stderr.isTTY),
    stdin: process.stdin,
  }
}

/** Writes one JSON document to stdout. Ids must already be strings. */
export function printJson(io: CliIO, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export function printLine(io: CliIO, line = ''): void {
  io.stdout.write(line + '\n')
}
