/**
 * `shardctl config init|check|show`: write a valid config that spreads the
 * shards evenly, check one (every problem at once, exit 2), and print the
 * resolved placement for scripts. URLs are shown with passwords redacted.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import type { RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../../errors.js'
import { buildConfig } from '../../config/init.js'
import { parseConfig, type ShardkitConfig } from '../../config/schema.js'
import { createMysqlPool, qualified, quoteIdent } from '../../runtime/mysql.js'
import { redactUrl } from '../../redact.js'
import { DIMENSIONS } from '../../router/shard-function.js'
import { intOption, loadCliConfig, withRuntime } from '../context.js'
import { checkFleet } from '../../config/fleet-check.js'
import { printJson, printLine, type CliIO } from '../io.js'

interface InitFlags {
  legacy?: string
  table?: string
  userColumn?: string
  merchantColumn?: string
  primaryKey?: string
  shardHost?: string[]
  databasesPerHost?: string
  prefix?: string
  control?: string
  redis?: string
  idCeiling?: string
  output?: string
  force?: boolean
}

async function maxLegacyId(url: string, database: string, table: string, pk: string): Promise<string> {
  const pool = createMysqlPool(url, { connectionLimit: 1 })
  try {
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT COALESCE(MAX(${quoteIdent(pk)}), 0) AS m FROM ${qualified(database, table)}`)
    return String(rows[0]!.m)
  } catch (err) {
    throw new ShardkitError('PRECONDITION_FAILED', `cannot read MAX(${pk}) from ${database}.${table} at ${redactUrl(url)} (${(err as { code?: string }).code ?? 'error'}); pass --id-ceiling or fix --legacy/--table`, { database, table }, { cause: err })
  } finally {
    await pool.end()
  }
}

function perHost(config: ShardkitConfig) {
  return DIMENSIONS.map((dim) => {
    const by = new Map<string, { shards: number; databases: Set<string> }>()
    for (const p of config.dimensions[dim].shards) {
      const e = by.get(p.host) ?? { shards: 0, databases: new Set<string>() }
      e.shards++
      e.databases.add(p.database)
      by.set(p.host, e)
    }
    return { dimension: dim, hosts: [...by].map(([host, e]) => ({ host, shards: e.shards, databases: [...e.databases] })) }
  })
}

export function registerConfigCommands(program: Command, io: CliIO): void {
  const config = program.command('config').description('write, check and show the fleet description (shardkit.json)')

  config
    .command('init')
    .description('write a valid config that spreads 120 + 120 logical shards evenly over the shard hosts')
    .requiredOption('--legacy <mysql-url>', 'the legacy server')
    .requiredOption('--table <db.table>', 'the legacy order table')
    .option('--user-column <c>', 'user id column', 'user_id')
    .option('--merchant-column <c>', 'merchant id column', 'merchant_id')
    .option('--primary-key <c>', 'order id column', 'order_id')
    .option('--shard-host <url>', 'a shard host (repeat for each)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--databases-per-host <n>', 'databases per host per dimension', '2')
    .option('--prefix <p>', 'prefix of every database shardkit creates', 'sk_')
    .option('--control <url>', 'control database server (default: the first shard host)')
    .option('--redis <url>', 'Redis URL', 'redis://127.0.0.1:6379')
    .option('--id-ceiling <n>', 'largest legacy order id (default: MAX(primary key) read from the legacy table)')
    .option('-o, --output <file>', 'where to write (default ./shardkit.json)')
    .option('--force', 'overwrite an existing output file')
    .action(async (f: InitFlags) => {
      const m = /^([A-Za-z0-9_$]+)\.([A-Za-z0-9_$]+)$/.exec(f.table ?? '')
      if (!m) throw new ShardkitError('USAGE', `--table must be <database>.<table> with plain identifiers (got "${f.table}")`, { argument: '--table' })
      if (!f.shardHost || f.shardHost.length === 0) throw new ShardkitError('USAGE', '--shard-host is required: give one mysql:// URL per shard host (repeat the option)', { argument: '--shard-host' })
      if (f.prefix !== undefined && !/^[a-z][a-z0-9_]{0,40}$/.test(f.prefix)) throw new ShardkitError('USAGE', `--prefix must be lowercase letters, digits and _ (got "${f.prefix}")`, { argument: '--prefix' })
      const out = resolve(io.cwd, f.output ?? 'shardkit.json')
      if (existsSync(out) && !f.force) throw new ShardkitError('USAGE', `${out} exists; pass --force to overwrite it or -o another file`, { argument: '--output' })
      const raw = buildConfig({
        legacyUrl: f.legacy!,
        legacyDatabase: m[1]!,
        legacyTable: m[2]!,
        userColumn: f.userColumn,
        merchantColumn: f.merchantColumn,
        primaryKey: f.primaryKey,
        idCeiling: '0',
        shardHosts: f.shardHost,
        databasesPerHost: intOption('--databases-per-host', f.databasesPerHost, { min: 1, max: 120 }),
        prefix: f.prefix,
        controlUrl: f.control,
        redisUrl: f.redis,
      })
      // Validate everything but the ceiling first, so a bad URL is reported before any connection.
      parseConfig(raw, io.env)
      raw.legacy.idCeiling = f.idCeiling ?? (await maxLegacyId(parseConfig(raw, io.env).legacy.url, m[1]!, m[2]!, f.primaryKey ?? 'order_id'))
      const checked = parseConfig(raw, io.env)
      writeFileSync(out, JSON.stringify(raw, null, 2) + '\n')
      printLine(io, `wrote ${out}: ${Object.keys(checked.hosts).length} hosts, 120 user + 120 merchant shards, legacy id ceiling ${checked.legacy.idCeiling}`)
    })

  config
    .command('check')
    .description('validate the config (every problem at once, exit 2), then ask the servers: dialects, a mixed MariaDB/MySQL fleet, the legacy version and key columns (exit 3)')
    .option('--offline', 'check the file only; connect to no server')
    .option('--json', 'print JSON: {"ok", "path", "dimensions", "servers", "problems", "notes"}')
    .action(async (f: { json?: boolean; offline?: boolean }, cmd: Command) => {
      const { config: c, path } = loadCliConfig(io, cmd)
      const rows = perHost(c)
      const fleet = f.offline ? undefined : await withRuntime(io, cmd, (rt) => checkFleet(rt))
      const ok = !fleet || fleet.problems.length === 0
      if (f.json) printJson(io, { ok, path, dimensions: rows, ...(fleet ? { servers: fleet.servers, problems: fleet.problems, notes: fleet.notes } : {}) })
      else {
        printLine(io, `${path}: ${ok ? 'ok' : `${fleet!.problems.length} problem${fleet!.problems.length === 1 ? '' : 's'} on the servers`}`)
        for (const r of rows) {
          printLine(io, `${r.dimension}:`)
          for (const h of r.hosts) printLine(io, `  ${h.host.padEnd(12)} ${String(h.shards).padStart(3)} shards in ${h.databases.join(', ')}  (${redactUrl(c.hosts[h.host]!)})`)
        }
        if (fleet) {
          printLine(io, 'servers:')
          for (const [name, d] of Object.entries(fleet.servers)) printLine(io, `  ${name.padEnd(12)} ${d ?? 'did not answer'}`)
          for (const p of fleet.problems) printLine(io, `problem (${p.kind}, ${p.servers.join(', ')}): ${p.message}`)
          for (const n of fleet.notes) printLine(io, `note: ${n}`)
        }
      }
      if (!ok) {
        const first = fleet!.problems[0]!
        throw new ShardkitError('PRECONDITION_FAILED', `config check found ${fleet!.problems.length} problem(s) on the servers; the first: ${first.message}`, { problems: fleet!.problems.length, kind: first.kind })
      }
    })

  config
    .command('show')
    .description('print the resolved placement')
    .option('--json', 'print JSON: { dimensions: { user: [{shard, host, database, table}], merchant: [...] }, hosts }')
    .action((f: { json?: boolean }, cmd: Command) => {
      const { config: c } = loadCliConfig(io, cmd)
      const dimensions = Object.fromEntries(DIMENSIONS.map((d) => [d, c.dimensions[d].shards.map((p) => ({ shard: p.shard, host: p.host, database: p.database, table: p.table }))]))
      const hosts = Object.fromEntries(Object.entries(c.hosts).map(([n, u]) => [n, redactUrl(u)]))
      if (f.json) return printJson(io, { dimensions, hosts, legacy: { ...c.legacy, url: redactUrl(c.legacy.url) }, control: { ...c.control, url: redactUrl(c.control.url) }, redis: { ...c.redis, url: redactUrl(c.redis.url) } })
      for (const d of DIMENSIONS) for (const p of c.dimensions[d].shards) printLine(io, `${d}\t${p.shard}\t${p.host}\t${p.database}\t${p.table}`)
    })
}
