/**
 * `shardctl sql lint` (statements from a file, a general/slow log or stdin;
 * or the legacy table's schema with --schema) and `shardctl sql explain`.
 */
import { createReadStream, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Readable } from 'node:stream'
import type { Command } from 'commander'
import { STAGES, type Stage } from '../../cutover/stages.js'
import { ShardkitError } from '../../errors.js'
import { SQL_CLASSES, type SqlClass } from '../../sql/classify.js'
import { SqlLinter } from '../../sql/linter.js'
import { readStatements, type LogFormat } from '../../sql/log-readers.js'
import { layoutOf, planStatement } from '../../sql/planner.js'
import { renderLintTable, renderPlan } from '../../sql/report.js'
import { lintSchema, readSchemaFacts } from '../../sql/schema-lint.js'
import { intOption, loadCliConfig, withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'

interface LintOpts { file?: string; generalLog?: string; slowLog?: string; json?: boolean; failOn?: string; schema?: boolean; maxStatementBytes?: string; allowTruncated?: boolean }

function openInput(io: CliIO, opts: LintOpts, stdin: () => Readable): { stream: Readable; format: LogFormat; name: string } {
  const given = ([['--file', opts.file, 'sql'], ['--general-log', opts.generalLog, 'general'], ['--slow-log', opts.slowLog, 'slow']] as const).filter((g) => g[1] !== undefined)
  if (given.length > 1) throw new ShardkitError('USAGE', `give one of --file, --general-log, --slow-log (got ${given.map((g) => g[0]).join(' and ')})`, { argument: given[1]![0] })
  if (given.length === 0) {
    const stream = stdin()
    if ((stream as { isTTY?: boolean }).isTTY) throw new ShardkitError('USAGE', 'give --file, --general-log or --slow-log, or pipe statements on stdin', { argument: '--file' })
    return { stream, format: 'sql', name: 'stdin' }
  }
  const [flag, path, format] = given[0]!
  const full = resolve(io.cwd, path!)
  let st
  try {
    st = statSync(full)
  } catch {
    throw new ShardkitError('USAGE', `${flag} ${path}: no such file`, { argument: flag })
  }
  if (!st.isFile()) throw new ShardkitError('USAGE', `${flag} ${path} is not a file`, { argument: flag })
  if (st.size === 0) throw new ShardkitError('SQL_INPUT_INVALID', `${flag} ${path} is empty: no statements to lint`, { argument: flag })
  return { stream: createReadStream(full, { highWaterMark: 256 * 1024 }), format, name: path! }
}

function parseFailOn(value: string | undefined): Set<SqlClass> {
  const set = new Set<SqlClass>(['unsupported'])
  for (const raw of (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!SQL_CLASSES.includes(raw as SqlClass)) throw new ShardkitError('USAGE', `--fail-on takes classes from ${SQL_CLASSES.join(', ')} (got "${raw}")`, { argument: '--fail-on' })
    set.add(raw as SqlClass)
  }
  return set
}

/** Registers `shardctl sql lint` and `shardctl sql explain`. */
export function registerSqlCommands(program: Command, io: CliIO, stdin: () => Readable = () => process.stdin): void {
  const sql = program.command('sql').description('find and plan legacy queries against the sharded layout')
  sql.command('lint')
    .description('classify statements (from --file, --general-log, --slow-log or stdin) by digest; exit 4 if any is unsupported')
    .option('--file <sql>', 'a file of ;-separated statements')
    .option('--general-log <file>', 'a MariaDB/MySQL general query log')
    .option('--slow-log <file>', 'a MariaDB/MySQL slow query log')
    .option('--schema', "lint the legacy table's definition instead (reads it over the legacy connection)")
    .option('--fail-on <classes>', 'also fail (exit 4) on these classes, comma-separated (e.g. scatter)')
    .option('--max-statement-bytes <n>', 'longest statement accepted (default 262144)')
    .option('--allow-truncated', 'lint a log whose last line is cut off')
    .option('--json', 'print JSON: {"summary", "digests"}')
    .action(async (opts: LintOpts, cmd: Command) => {
      const failOn = parseFailOn(opts.failOn)
      const max = intOption('--max-statement-bytes', opts.maxStatementBytes, { min: 1024, max: 64 * 1024 * 1024 }) ?? 256 * 1024
      if (opts.schema) {
        if (opts.file ?? opts.generalLog ?? opts.slowLog) throw new ShardkitError('USAGE', '--schema reads the legacy table, not statements: drop --file/--general-log/--slow-log', { argument: '--schema' })
        const findings = await withRuntime(io, cmd, async (rt) => lintSchema(await readSchemaFacts(rt.legacy(), rt.config.legacy.database, rt.config.legacy.table), layoutOf(rt.config)))
        if (opts.json) printJson(io, { findings })
        else if (findings.length === 0) printLine(io, 'schema: nothing the sharded layout cannot keep')
        else for (const f of findings) printLine(io, `${f.kind.padEnd(18)} ${f.object.padEnd(28)} ${f.message}`)
        if (findings.length > 0) throw new ShardkitError('INCONSISTENT', `${findings.length} schema finding(s) the sharded layout cannot keep; see above`, { findings: findings.length })
        return
      }
      const { config } = loadCliConfig(io, cmd)
      const input = openInput(io, opts, stdin)
      const linter = new SqlLinter(layoutOf(config), { idCeiling: config.legacy.idCeiling })
      for await (const s of readStatements(input.stream, input.format, { name: input.name, maxStatementChars: max, allowTruncated: opts.allowTruncated })) {
        if (s.end) linter.endSession(s.session ?? '-')
        else linter.add(s.sql, s.session ?? '-')
      }
      if (linter.statements === 0) throw new ShardkitError('SQL_INPUT_INVALID', `${input.name} holds no statements to lint`, { input: input.name })
      const report = linter.report()
      if (opts.json) printJson(io, { summary: report.summary, digests: report.digests.map(({ merge: _m, ...d }) => d), ...(report.overflowStatements > 0 ? { overflowStatements: report.overflowStatements } : {}) })
      else for (const line of renderLintTable(report)) printLine(io, line)
      const failing = report.digests.filter((d) => failOn.has(d.class))
      if (failing.length > 0) {
        const classes = [...new Set(failing.map((d) => d.class))].join(', ')
        throw new ShardkitError('INCONSISTENT', `${failing.length} digest(s) are ${classes}: rewrite them as suggested before the cutover`, { digests: failing.length })
      }
    })
  sql.command('explain')
    .description('the plan one statement gets: class, shards, physical tables, per-shard SQL, merge step')
    .argument('<statement>', 'one SQL statement; ? placeholders take --params')
    .option('--params <json>', 'a JSON array of values for the ? placeholders (ids as strings)')
    .option('--stage <stage>', `cutover stage to plan at (${STAGES.join(', ')})`, 'shards')
    .option('--json', 'print the plan as JSON')
    .action(async (statement: string, opts: { params?: string; stage: string; json?: boolean }, cmd: Command) => {
      if (!STAGES.includes(opts.stage as Stage)) throw new ShardkitError('USAGE', `--stage must be one of ${STAGES.join(', ')} (got "${opts.stage}")`, { argument: '--stage' })
      let params: unknown[] = []
      if (opts.params !== undefined) {
        try {
          params = JSON.parse(opts.params)
        } catch {
          throw new ShardkitError('USAGE', '--params must be a JSON array, e.g. \'["42", "shipped"]\'', { argument: '--params' })
        }
        if (!Array.isArray(params)) throw new ShardkitError('USAGE', '--params must be a JSON array, e.g. \'["42", "shipped"]\'', { argument: '--params' })
      }
      const { config } = loadCliConfig(io, cmd)
      const plan = planStatement(config, statement, params, { stage: opts.stage as Stage })
      if (opts.json) printJson(io, plan)
      else for (const line of renderPlan(plan)) printLine(io, line)
    })
}
