/**
 * `npm run soak -- --minutes M --rps R [--orders N] [--seed S] [--faults K,K] [--contend N] [--no-extra-host] [--keep] [--json]`:
 * the rehearsal under steady load with faults at random intervals (soak.ts).
 * Progress on stderr, the report on stdout; exit 0 only when no acknowledged
 * order was lost or duplicated, every fault was survived, verify is clean and
 * every acknowledged order's events were handled exactly once in order (or
 * reported unvouched by the Redis-only consumer, none unexplained).
 */
import { parseArgs } from 'node:util'
import { redactText } from '../../src/index.js'
import { resolveServices } from '../../test/support/services.js'
import { formatSoak, runSoak } from './soak.js'
import { FAULTS, type FaultKind } from './faults.js'

const USAGE = `usage: npm run soak -- [--minutes M] [--rps R] [--orders N] [--seed S] [--faults K,K] [--contend N] [--no-extra-host] [--keep] [--json]
  --contend N    busy-loop processes beside the run (default 0)
  --no-extra-host  keep every shard database on the one server (no host-stop fault)
  --faults K,K   which faults to inject, comma-separated (default all):
${FAULTS.map((f) => `                   ${f.name.padEnd(14)} ${f.summary}`).join('\n')}
`

function usage(msg: string): never {
  process.stderr.write(`soak: ${msg}\n${USAGE}`)
  process.exit(2)
}

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE)
  process.exit(0)
}

let args
try {
  args = parseArgs({ options: { minutes: { type: 'string', default: '2' }, rps: { type: 'string', default: '100' }, orders: { type: 'string', default: '20000' }, seed: { type: 'string' }, faults: { type: 'string' }, contend: { type: 'string', default: '0' }, 'no-extra-host': { type: 'boolean', default: false }, keep: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } }).values
} catch (err) {
  usage((err as Error).message)
}
const minutes = Number(args.minutes)
if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) usage(`--minutes must be a number above 0, at most 1440 (got ${args.minutes})`)
const rps = Number(args.rps)
if (!Number.isFinite(rps) || rps <= 0 || rps > 10_000) usage(`--rps must be a number above 0, at most 10000 (got ${args.rps})`)
const orders = Number(args.orders)
if (!Number.isInteger(orders) || orders < 1 || orders > 10_000_000) usage(`--orders must be a whole number from 1 to 10000000 (got ${args.orders})`)
const seed = args.seed === undefined ? undefined : Number(args.seed)
if (seed !== undefined && !Number.isInteger(seed)) usage(`--seed must be a whole number (got ${args.seed})`)

const contend = Number(args.contend)
if (!Number.isInteger(contend) || contend < 0 || contend > 8) usage(`--contend must be a whole number from 0 to 8 (got ${args.contend})`)
if (args['no-extra-host'] && args.faults?.split(',').map((x) => x.trim()).includes('host-stop')) usage('--faults names host-stop, which needs the extra shard host: drop --no-extra-host')
let faults: FaultKind[] | undefined
if (args.faults !== undefined) {
  const names = args.faults.split(',').map((x) => x.trim()).filter((x) => x.length > 0)
  const unknown = names.filter((x) => !FAULTS.some((f) => f.name === x))
  if (names.length === 0 || unknown.length > 0) usage(`--faults must name faults from: ${FAULTS.map((f) => f.name).join(', ')} (got ${unknown.length > 0 ? unknown.join(', ') : 'none'})`)
  faults = [...new Set(names)] as FaultKind[]
}

let services: Awaited<ReturnType<typeof resolveServices>>
try {
  services = await resolveServices({ ...process.env, SHARDKIT_TEST_MYSQL_URL: process.env.SHARDKIT_DEMO_MYSQL_URL, SHARDKIT_TEST_REDIS_URL: process.env.SHARDKIT_DEMO_REDIS_URL })
} catch (err) {
  process.stderr.write(`soak: ${redactText((err as Error).message.replaceAll('SHARDKIT_TEST_', 'SHARDKIT_DEMO_'))}\n`)
  process.exit(3)
}
let report
try {
  report = await runSoak({ minutes, rps, orders, keep: args.keep, mysqlUrl: services.mysqlUrl, redisUrl: services.redisUrl, ...(seed !== undefined ? { seed } : {}), ...(faults ? { faults } : args['no-extra-host'] ? { faults: FAULTS.map((f) => f.name).filter((n) => n !== 'host-stop') } : {}), contend, extraHost: !args['no-extra-host'], log: (l) => process.stderr.write(`${redactText(l)}\n`) })
} finally {
  if (!args.keep) await services.stop()
}
process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : redactText(formatSoak(report)))
process.exitCode = report.ok ? 0 : 1
