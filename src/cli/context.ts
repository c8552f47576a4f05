/**
 * Shared command plumbing: load the config named by -c/--config (or
 * SHARDKIT_CONFIG, or ./shardkit.json), open the runtime, run, close.
 */
import type { Command } from 'commander'
import { loadConfig } from '../config/load.js'
import type { ShardkitConfig } from '../config/schema.js'
import { openRuntime, type Runtime } from '../runtime/runtime.js'
import { ShardkitError } from '../errors.js'
import type { CliIO } from './io.js'

/** The global options every command sees (declared on the root program). */
export interface GlobalOptions {
  config?: string
  debug?: boolean
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions
}

export function loadCliConfig(io: CliIO, cmd: Command): { config: ShardkitConfig; path: string } {
  return loadConfig({ path: globalOptions(cmd).config, env: io.env, cwd: io.cwd })
}

/** Loads the config, opens a runtime, runs `fn`, and always closes the runtime. */
export async function withRuntime<T>(io: CliIO, cmd: Command, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const { config } = loadCliConfig(io, cmd)
  const rt = openRuntime(config, { logger: io.logger })
  try {
    return await fn(rt)
  } finally {
    await rt.close()
  }
}

/** Parses a positive integer option or throws USAGE naming the option. */
export function intOption(name: string, value: string | undefined, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}): number | undefined {
  if (value === undefined) return undefined
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ShardkitError('USAGE', `${name} must be a whole number from ${min} to ${max} (got "${value}")`, { argument: name })
  }
  return Number(value)
}
