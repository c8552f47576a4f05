/**
 * The shardctl command tree. Each command lives in commands/<noun>.ts and
 * registers itself here; commands are thin: parse, load config, open the
 * runtime, call the library, render.
 */
import { Command } from 'commander'
import type { CliIO } from './io.js'
import { registerIdCommands } from './commands/id.js'
import { registerConfigCommands } from './commands/config.js'
import { registerRouteCommands } from './commands/route.js'
import { registerProvisionCommands } from './commands/provision.js'
import { registerBackfillCommands } from './commands/backfill.js'
import { registerVerifyCommands } from './commands/verify.js'
import { registerRepairCommands } from './commands/repair.js'
import { registerDualwriteCommands } from './commands/dualwrite.js'
import { registerCutoverCommands } from './commands/cutover.js'
import { registerSqlCommands } from './commands/sql.js'
import { registerEventsCommands } from './commands/events.js'
import { registerJobControlCommands } from './commands/jobs.js'
import { registerStatusCommand } from './commands/status.js'
import { registerServeCommand } from './commands/serve.js'

export function buildProgram(io: CliIO): Command {
  const program = new Command('shardctl')
    .description('move a live MySQL order system onto 120 + 120 logical shards without losing an order')
    .option('-c, --config <file>', 'config file (else $SHARDKIT_CONFIG, else ./shardkit.json)')
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
  registerConfigCommands(program, io)
  registerIdCommands(program, io)
  registerRouteCommands(program, io)
  registerProvisionCommands(program, io)
  registerBackfillCommands(program, io)
  registerVerifyCommands(program, io)
  registerRepairCommands(program, io)
  registerDualwriteCommands(program, io)
  registerCutoverCommands(program, io)
  registerSqlCommands(program, io)
  registerEventsCommands(program, io)
  registerJobControlCommands(program, io)
  registerStatusCommand(program, io)
  registerServeCommand(program, io)
  return program
}
