/**
 * Runs shardctl and returns the exit code: 0 ok, 1 error, 2 usage/config,
 * 3 refused precondition, 4 inconsistency found, 5 another run holds the lock.
 * The only place that turns errors into text for a person.
 */
import { CommanderError } from 'commander'
import { exitCodeFor, ShardkitError } from '../errors.js'
import { redactText } from '../redact.js'
import { buildProgram } from './program.js'
import { processIO, type CliIO } from './io.js'
import { installFaultHooks } from './fault-hooks.js'
import { describeDriverError } from '../runtime/mysql-errors.js'

export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const program = buildProgram(io)
  // Fault-injection tests only (test/faults): every library phase point waits on this socket.
  const restoreHooks = io.env.SHARDKIT_FAULT_HOOKS ? installFaultHooks(io.env.SHARDKIT_FAULT_HOOKS) : undefined
  try {
    await program.parseAsync(argv as string[])
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return 0
      // commander already printed its message; usage errors are exit 2.
      return 2
    }
    const debug = argv.includes('--debug')
    const driver = err instanceof ShardkitError ? undefined : describeDriverError(err)
    const msg = err instanceof ShardkitError ? `shardctl: ${err.message}` : driver ? `shardctl: ${driver.message}` : `shardctl: unexpected error: ${(err as Error)?.message ?? String(err)}`
    io.stderr.write(redactText(msg) + '\n')
    if (debug && err instanceof Error && err.stack) io.stderr.write(redactText(err.stack) + '\n')
    return exitCodeFor(err)
  } finally {
    restoreHooks?.()
  }
}
