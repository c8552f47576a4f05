/**
 * Runs one backfill or verify over an existing bench fleet in its own
 * process and prints `{ seconds, rows, maxRssMb }` as JSON: the peak resident
 * memory of that work alone. Used by bench/backfill.ts and bench/verify.ts.
 * Usage: tsx bench/support/rss-child.ts <backfill|verify> <config.json>
 */
import { readFileSync } from 'node:fs'
import { parseConfig } from '../../src/config/schema.js'
import { openRuntime } from '../../src/runtime/runtime.js'
import { runBackfill } from '../../src/backfill/index.js'
import { runVerify } from '../../src/verify/index.js'

const [what, file] = process.argv.slice(2)
const config = parseConfig(JSON.parse(readFileSync(file!, 'utf8')), {})
const rt = openRuntime(config, { connectionLimit: 8 })
const t0 = performance.now()
let rows = 0
let clean: boolean | undefined
try {
  if (what === 'backfill') rows = (await runBackfill(rt, { restart: true })).rowsCopied
  else {
    const r = await runVerify(rt, { rounds: 1 })
    rows = r.rowsCompared.legacy + r.rowsCompared.user + r.rowsCompared.merchant
    clean = r.clean
  }
} finally {
  await rt.close()
}
process.stdout.write(JSON.stringify({ what, seconds: (performance.now() - t0) / 1000, rows, clean, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }) + '\n')
