/**
 * `npm run demo [-- --orders N --rps R --keep --json]`: the one-command
 * migration rehearsal (see rehearsal.ts). Progress on stderr, the report on
 * stdout; exit 0 only when every expectation held.
 */
import { parseArgs } from 'node:util'
import { redactText } from '../../src/index.js'
import { resolveServices } from '../../test/support/services.js'
import { runRehearsal } from './rehearsal.js'
import { formatReport } from './report.js'
import { startBusyLoops, stopBusyLoops } from './contend.js'
import { parseListen } from '../../src/serve/server.js'

function usage(msg: string): never {
  process.stderr.write(`demo: ${msg}\nusage: npm run demo -- [--orders N] [--rps R] [--contend N] [--keep] [--json] [--serve [--serve-listen HOST:PORT]]\n`)
  process.exit(2)
}

let args
try {
  args = parseArgs({ options: { orders: { type: 'string', default: '200000' }, rps: { type: 'string', default: '100' }, contend: { type: 'string', default: '0' }, keep: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, serve: { type: 'boolean', default: false }, 'serve-listen': { type: 'string', default: '127.0.0.1:9400' } } }).values
} catch (err) {
  usage((err as Error).message)
}
const orders = Number(args.orders)
if (!Number.isInteger(orders) || orders < 1 || orders > 50_000_000) usage(`--orders must be a whole number from 1 to 50000000 (got ${args.orders})`)
const contend = Number(args.contend)
if (!Number.isInteger(contend) || contend < 0 || contend > 16) usage(`--contend must be a whole number of busy-loop processes from 0 to 16 (got ${args.contend})`)
const rps = Number(args.rps)
if (!Number.isFinite(rps) || rps <= 0 || rps > 10_000) usage(`--rps must be a number above 0, at most 10000 (got ${args.rps})`)

if (args.serve) {
  try {
    parseListen(args['serve-listen'] ?? '')
  } catch (err) {
    usage((err as Error).message.replace('--listen', '--serve-listen'))
  }
}

// SHARDKIT_DEMO_* URLs, else the local defaults, else (with a Docker engine) testcontainers: the same
// resolution the test suite uses.
let services: Awaited<ReturnType<typeof resolveServices>>
try {
  services = await resolveServices({ ...process.env, SHARDKIT_TEST_MYSQL_URL: process.env.SHARDKIT_DEMO_MYSQL_URL, SHARDKIT_TEST_REDIS_URL: process.env.SHARDKIT_DEMO_REDIS_URL })
} catch (err) {
  process.stderr.write(`demo: ${redactText((err as Error).message.replaceAll('SHARDKIT_TEST_', 'SHARDKIT_DEMO_'))}\n`)
  process.exit(3)
}
if (services.sources.mysql !== 'local default' || services.sources.redis !== 'local default') process.stderr.write(`demo: MariaDB/MySQL from ${services.sources.mysql}, Redis from ${services.sources.redis}\n`.replaceAll('SHARDKIT_TEST_', 'SHARDKIT_DEMO_'))
const { mysqlUrl, redisUrl } = services
// A production host is rarely idle: --contend N runs N busy loops beside the rehearsal, for its duration.
const burners = startBusyLoops(contend)
if (contend > 0) process.stderr.write(`demo: ${contend} busy-loop process(es) running beside the rehearsal (pids ${burners.map((b) => b.pid).join(', ')})\n`)
let report
try {
  report = await runRehearsal({ orders, rps, keep: args.keep, mysqlUrl, redisUrl, progress: process.stderr.isTTY === true, ...(args.serve ? { serve: args['serve-listen'] } : {}), log: (l) => process.stderr.write(`${redactText(l)}\n`) })
} finally {
  stopBusyLoops(burners)
  if (!args.keep) await services.stop()
}
process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : redactText(formatReport(report)))
process.exitCode = report.ok ? 0 : 1
