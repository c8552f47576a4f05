/**
 * `shardctl id new` and `shardctl id decode`.
 *
 * `id new` works on a fresh clone without a config file: with a config (-c,
 * SHARDKIT_CONFIG or ./shardkit.json) it leases a worker from the fleet's
 * control database; without one, from `--control` (default
 * mysql://root@127.0.0.1:3306/shardkit_control), creating the database and the
 * lease table if missing. It refuses both at once: a worker leased from a
 * different table than the fleet's could repeat the fleet's ids.
 */
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import type { Command } from 'commander'
import type { Pool } from 'mysql2/promise'
import { resolveConfigPath } from '../../config/load.js'
import { ShardkitError } from '../../errors.js'
import { openIdGenerator } from '../../idgen/generator.js'
import { decodeId } from '../../idgen/layout.js'
import { MysqlLeaseStore, ensureLeaseSchema } from '../../idgen/lease.js'
import { redactText, redactUrl } from '../../redact.js'
import { shardOfKey } from '../../router/shard-function.js'
import { createMysqlPool } from '../../runtime/mysql.js'
import { openRuntime } from '../../runtime/runtime.js'
import { globalOptions, intOption, loadCliConfig } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'

/** Where `id new` leases from when no config file is found. */
export const DEFAULT_CONTROL_URL = 'mysql://root@127.0.0.1:3306/shardkit_control'
const MAX_COUNT = 1_000_000

interface ControlTarget {
  readonly pool: Pool
  readonly database: string
  readonly url: string
  readonly leaseTtlMs?: number
  readonly maxLeadMs?: number
  readonly legacyCeiling?: string
  close(): Promise<void>
}

function controlFromFlag(value: string): ControlTarget {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    throw new ShardkitError('USAGE', `--control "${redactText(value)}" is not a URL: give mysql://user:password@host:port/database`, { argument: '--control' })
  }
  if (u.protocol !== 'mysql:') throw new ShardkitError('USAGE', `--control must be a mysql:// URL (got ${u.protocol}//...)`, { argument: '--control' })
  const database = u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : 'shardkit_control'
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) throw new ShardkitError('USAGE', `--control names database "${database}": use 1-64 letters, digits or _`, { argument: '--control' })
  // The database may not exist yet: connect to the server and qualify the table.
  const server = new URL(u.toString())
  server.pathname = ''
  const pool = createMysqlPool(server.toString(), { connectionLimit: 2 })
  return { pool, database, url: value, close: () => pool.end() }
}

function registerNew(id: Command, io: CliIO): void {
  id.command('new')
    .description('issue new order ids for a user: one per line (leases a worker from the control database)')
    .requiredOption('--user <userId>', 'the user id (a non-negative integer of up to 20 digits: every value the router routes)')
    .option('--count <n>', `how many ids (1 to ${MAX_COUNT})`, '1')
    .option('--control <mysql-url>', `control database to lease from when no config file is found (default ${DEFAULT_CONTROL_URL})`)
    .option('--json', 'print JSON: {"userId","userShard","worker","ids"}')
    .action(async (opts: { user: string; count: string; control?: string; json?: boolean }, cmd: Command) => {
      // Bad input is refused before anything connects.
      const userShard = shardOfKey(opts.user, '--user')
      const count = intOption('--count', opts.count, { min: 1, max: MAX_COUNT })!
      const found = resolveConfigPath({ path: globalOptions(cmd).config, env: io.env, cwd: io.cwd })
      const useConfig = found.source !== 'default' || existsSync(found.path)
      if (useConfig && opts.control !== undefined) {
        throw new ShardkitError('USAGE', `--control cannot be combined with a config file (${found.path}): ids must be leased from the fleet's own control database; drop --control, or run where no config is found`, { argument: '--control' })
      }
      let target: ControlTarget
      let how: string
      if (useConfig) {
        const { config, path } = loadCliConfig(io, cmd)
        const rt = openRuntime(config, { logger: io.logger, connectionLimit: 2 })
        target = { pool: rt.controlServer(), database: config.control.database, url: config.control.url, ...config.idgen, legacyCeiling: config.legacy.idCeiling, close: () => rt.close() }
        how = `config ${path}`
      } else {
        target = controlFromFlag(opts.control ?? DEFAULT_CONTROL_URL)
        how = opts.control === undefined ? 'no config file found; the --control default' : '--control'
      }
      io.stderr.write(`shardctl: leasing an id worker from ${redactUrl(target.url)} database ${target.database} (${how})\n`)
      try {
        try {
          await ensureLeaseSchema(target.pool, target.database, { createDatabase: true })
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'error'
          const hint = /ACCESS_DENIED/.test(code)
            ? 'check the user and password in the URL, and that the user may create databases and tables'
            : /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH/.test(code)
              ? 'start MySQL/MariaDB there, or point to another server with --control <mysql-url> or -c <config>'
              : 'check that the server answers and the user may create the table'
          throw new ShardkitError('DB_ERROR', `cannot prepare the lease table in ${redactUrl(target.url)} database ${target.database} (${code}): ${hint}`, { code }, { cause: err })
        }
        const gen = await openIdGenerator({
          store: new MysqlLeaseStore(target.pool, target.database),
          leaseTtlMs: target.leaseTtlMs,
          maxLeadMs: target.maxLeadMs,
          legacyCeiling: target.legacyCeiling,
          owner: `shardctl@${hostname()}:${process.pid}`,
          logger: io.logger,
        })
        let ids: string[]
        try {
          ids = await gen.nextIdsAsync(opts.user, count)
        } finally {
          await gen.close()
        }
        if (opts.json) printJson(io, { userId: opts.user, userShard, worker: gen.worker, ids })
        else printLine(io, ids.join('\n'))
      } finally {
        await target.close()
      }
    })
}

/** Registers `shardctl id new` and `shardctl id decode`. */
export function registerIdCommands(program: Command, io: CliIO): void {
  const id = program.command('id').description('issue and decode order ids that carry the user shard')

  registerNew(id, io)

  id.command('decode')
    .description('print the time, worker, sequence and user shard of an order id')
    .argument('<id>', 'a new-style order id (decimal)')
    .option('--json', 'print JSON')
    .action((value: string, opts: { json?: boolean }) => {
      const d = decodeId(value, 'argument <id>')
      if (opts.json) {
        printJson(io, { id: d.id, time: d.iso, worker: d.worker, sequence: d.sequence, userShard: d.shard })
      } else {
        printLine(io, `id        ${d.id}\ntime      ${d.iso}\nworker    ${d.worker}\nsequence  ${d.sequence}\nuserShard ${d.shard}`)
      }
    })
}
