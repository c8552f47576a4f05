/**
 * Finds, reads and validates the config file. The only module that reads
 * `process.env` for configuration: callers pass `env` explicitly elsewhere.
 */
import { readFileSync, existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { ShardkitError } from '../errors.js'
import { parseConfig, type ShardkitConfig } from './schema.js'

export interface LoadConfigOptions {
  /** `-c/--config`; else `SHARDKIT_CONFIG`; else `./shardkit.json`. */
  readonly path?: string
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly cwd?: string
}

/** Which file `loadConfig` would read, and why. */
export function resolveConfigPath(opts: LoadConfigOptions = {}): { path: string; source: 'flag' | 'env' | 'default' } {
  const env = opts.env ?? process.env
  const cwd = opts.cwd ?? process.cwd()
  if (opts.path) return { path: resolve(cwd, opts.path), source: 'flag' }
  if (env.SHARDKIT_CONFIG) return { path: resolve(cwd, env.SHARDKIT_CONFIG), source: 'env' }
  return { path: resolve(cwd, 'shardkit.json'), source: 'default' }
}

/**
 * Reads and validates the config.
 * @throws ShardkitError `CONFIG_NOT_FOUND` when the file is missing, `CONFIG_INVALID` when it is not valid JSON or not a valid config
 */
export function loadConfig(opts: LoadConfigOptions = {}): { config: ShardkitConfig; path: string } {
  const env = opts.env ?? process.env
  const { path, source } = resolveConfigPath(opts)
  if (!existsSync(path)) {
    const how = source === 'flag' ? 'check the -c/--config argument' : source === 'env' ? 'check SHARDKIT_CONFIG' : 'pass -c <file>, set SHARDKIT_CONFIG, or create one with `shardctl config init`'
    throw new ShardkitError('CONFIG_NOT_FOUND', `no config file at ${path}; ${how}`, { path })
  }
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ShardkitError('CONFIG_INVALID', `${path} is not valid JSON: ${(err as Error).message}`, { path }, { cause: err })
  }
  return { config: parseConfig(raw, env), path }
}
