/**
 * `npm run load -- --rps N --duration S [--url URL ...] [--ids-file PATH] [--json]`
 * Load on the order service; prints the report (stdout), records every order
 * id it was told was created (one per line in --ids-file). SIGINT/SIGTERM stop
 * it early: requests in flight finish, then it reports.
 */
import { createWriteStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { formatLoadReport, runLoad } from './generator.js'

function usage(msg: string): never {
  process.stderr.write(`load: ${msg}\nusage: npm run load -- --rps N --duration S [--url URL ...] [--users N] [--merchants N] [--ids-file PATH] [--json]\n`)
  process.exit(2)
}

function num(name: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n < min) usage(`--${name} must be a number >= ${min} (got ${v})`)
  return n
}

let args
try {
  args = parseArgs({
    options: {
      rps: { type: 'string' },
      duration: { type: 'string' },
      url: { type: 'string', multiple: true },
      users: { type: 'string' },
      merchants: { type: 'string' },
      'ids-file': { type: 'string' },
      'max-in-flight': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  }).values
} catch (err) {
  usage((err as Error).message)
}
const rps = num('rps', args.rps, 50, 0.1)
const durationS = num('duration', args.duration, 10, 0)
const urls = args.url ?? ['http://127.0.0.1:8080']
for (const u of urls) if (!/^https?:\/\//.test(u)) usage(`--url must be an http:// URL (got ${u})`)

const ac = new AbortController()
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort())
const ids = args['ids-file'] ? createWriteStream(args['ids-file'], { flags: 'a' }) : undefined
const report = await runLoad({
  urls,
  rps,
  durationS,
  signal: ac.signal,
  users: num('users', args.users, 50_000, 1),
  merchants: num('merchants', args.merchants, 2_000, 1),
  maxInFlight: num('max-in-flight', args['max-in-flight'], 256, 1),
  ...(ids ? { onCreated: (id: string) => ids.write(`${id}\n`) } : {}),
})
if (ids) await new Promise<void>((r) => ids.end(r))
process.stdout.write(args.json ? `${JSON.stringify(report)}\n` : `${formatLoadReport(report)}\n`)
process.exitCode = report.errors > 0 ? 1 : 0
