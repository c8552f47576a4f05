/**
 * The built CLI as a child process: `shardctl sql lint` (file, stdin, general
 * log, --json, --fail-on, bad input, bounded memory on large logs, --schema on
 * a real legacy table) and `shardctl sql explain`. Needs `npm run build`.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { qualified } from '../../src/runtime/mysql.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'
import { writeSyntheticGeneralLog } from '../fixtures/sql/general-log.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(ROOT, 'dist/bin/shardctl.js')
const prefix = testPrefix('sqlcli')
const env: Record<string, string | undefined> = { ...process.env, SHARDKIT_LOG_LEVEL: 'silent' }
delete env.SHARDKIT_CONFIG
let cwd: string
// prints the child's peak RSS (KiB) on exit, so a test can compare log sizes
const MAXRSS = "data:text/javascript,process.on('exit',()=>process.stderr.write('maxrss='+process.resourceUsage().maxRSS+'\\n'))"

function run(args: string[], opts: { input?: string | Buffer; nodeArgs?: string[]; timeout?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, ...args], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeout ?? 60_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }))
    child.stdin.on('error', () => undefined)
    child.stdin.end(opts.input ?? '')
  })
}

const MIXED = `
SELECT * FROM orders WHERE user_id = 42;
SELECT * FROM orders WHERE user_id = 43;
SELECT * FROM orders WHERE merchant_id = 9 ORDER BY created_at DESC LIMIT 20;
SELECT * FROM orders WHERE order_id = 1234567890123;
SELECT * FROM orders WHERE user_id IN (1, 2, 3);
SELECT COUNT(*) FROM orders WHERE status = 'paid';
SELECT AVG(total_cents) FROM orders;
UPDATE orders SET user_id = 5 WHERE order_id = 77;
SELECT * FROM users WHERE id = 1;
SELECT * FROM orders RETURNING order_id;
`

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` before the e2e tests`)
  cwd = mkdtempSync(join(tmpdir(), 'shardkit-sql-e2e-'))
  const url = testMysqlUrl()
  writeFileSync(join(cwd, 'shardkit.json'), JSON.stringify(buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [url], databasesPerHost: 2, prefix, redisUrl: testRedisUrl() }), null, 2))
  writeFileSync(join(cwd, 'mixed.sql'), MIXED)
})
afterAll(async () => {
  if (cwd) rmSync(cwd, { recursive: true, force: true })
  await dropPrefixedDatabases(prefix)
})

describe('shardctl sql lint', () => {
  it('--file over a mixed file names every digest with a class and a suggestion, most frequent first, and exits 4', async () => {
    const r = await run(['sql', 'lint', '--file', 'mixed.sql'])
    expect(r.code).toBe(4)
    const rows = r.stdout.split('\n').filter((l) => /^\s+\d+\s{2}/.test(l))
    expect(rows).toHaveLength(9)
    expect(rows[0]).toMatch(/^\s+2\s+user\s+user\s+1\s+select \* from orders where user_id = \?$/)
    for (const cls of ['user', 'merchant', 'order', 'multi', 'scatter', 'unsupported', 'other', 'unparsed']) expect(r.stdout).toContain(`  ${cls}`)
    expect(r.stdout.split('\n').filter((l) => l.includes(' -> '))).toHaveLength(9)
    expect(r.stderr).toMatch(/unsupported: rewrite them/)
  })

  it('--json has the issue shape', async () => {
    const r = await run(['sql', 'lint', '--file', 'mixed.sql', '--json'])
    expect(r.code).toBe(4)
    const out = JSON.parse(r.stdout)
    expect(Object.keys(out)).toEqual(['summary', 'digests'])
    expect(out.summary.user).toEqual({ digests: 1, statements: 2 })
    expect(out.summary.unsupported).toEqual({ digests: 2, statements: 2 })
    for (const d of out.digests) {
      expect(Object.keys(d).filter((k) => k !== 'error')).toEqual(['digest', 'example', 'count', 'class', 'dimension', 'shards', 'reasons', 'suggestion', 'classes'])
    }
    expect(out.digests.find((d: { class: string }) => d.class === 'multi')).toMatchObject({ dimension: 'user', shards: 3 })
    expect(out.digests.find((d: { reasons: string[] }) => d.reasons.includes('shard-key-update'))).toBeTruthy()
  })

  it('issue 18: a digest is judged by its worst statement, with counts per class, in --json and in the table', async () => {
    const input = 'SELECT * FROM orders WHERE user_id IN (5, 5);\nSELECT * FROM orders WHERE user_id IN (1, 2, 3);\nSELECT * FROM orders WHERE user_id IN (7, 8, 9, 10);\n'
    const r = await run(['sql', 'lint', '--json'], { input })
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.digests).toEqual([expect.objectContaining({ digest: 'select * from orders where user_id in (?+)', count: 3, class: 'multi', shards: 4, classes: { user: 1, multi: 2 } })])
    expect(out.summary).toEqual({ multi: { digests: 1, statements: 3 } })
    const text = await run(['sql', 'lint'], { input })
    expect(text.stdout).toMatch(/statements by class: user 1, multi 2/)
  })

  it('exits 0 without unsupported statements; --fail-on scatter makes scatter fail; reads stdin', async () => {
    const input = "SELECT * FROM orders WHERE user_id = 1;\nSELECT * FROM orders WHERE status = 'x';\n"
    expect((await run(['sql', 'lint'], { input })).code).toBe(0)
    const failing = await run(['sql', 'lint', '--fail-on', 'scatter'], { input })
    expect(failing.code).toBe(4)
    expect(failing.stderr).toContain('scatter')
    const bad = await run(['sql', 'lint', '--fail-on', 'sometimes'], { input })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--fail-on')
  })

  it('bad input: binary garbage, a truncated log, an empty file, a 1 MB statement: a clear message, non-zero, no stack', async () => {
    writeFileSync(join(cwd, 'garbage.bin'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)))
    writeFileSync(join(cwd, 'empty.sql'), '')
    writeFileSync(join(cwd, 'cut.log'), 'Time\t\t    Id Command\tArgument\n\t\t     5 Query\tSELECT * FROM orders WHERE user_id = 1\n\t\t     5 Query\tSELECT * FROM ord')
    writeFileSync(join(cwd, 'huge.sql'), "SELECT * FROM orders WHERE note = '" + 'x'.repeat(1024 * 1024) + "';\n")
    const cases: [string[], RegExp][] = [
      [['--file', 'garbage.bin'], /garbage\.bin line \d+ (holds binary data|is not valid UTF-8)/],
      [['--general-log', 'cut.log'], /cut\.log ends in the middle of a line: the log looks truncated/],
      [['--file', 'empty.sql'], /empty\.sql is empty/],
      [['--file', 'huge.sql'], /longer than 262144 characters: raise --max-statement-bytes/],
      [['--file', 'missing.sql'], /--file missing\.sql: no such file/],
      [['--file', 'mixed.sql', '--general-log', 'cut.log'], /give one of --file, --general-log, --slow-log/],
    ]
    for (const [args, message] of cases) {
      const r = await run(['sql', 'lint', ...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(message)
      expect(r.stderr).not.toMatch(/\n\s+at /)
      expect(r.stdout).toBe('')
    }
    expect((await run(['sql', 'lint', '--general-log', 'cut.log', '--allow-truncated'])).code).toBe(0)
  })

  it('lints large general logs in bounded memory: peak RSS at 200 MB is within 1.25x of that at 50 MB', async () => {
    const rss: number[] = []
    for (const mb of [50, 200]) {
      const path = join(cwd, `general-${mb}.log`)
      // ~106 bytes per entry on average
      await writeSyntheticGeneralLog(path, Math.round((mb * 1e6) / 106), mb)
      const r = await run(['sql', 'lint', '--general-log', path, '--json'], { nodeArgs: ['--import', MAXRSS], timeout: 120_000 })
      expect(r.code, r.stderr).toBe(4)
      const total = Object.values(JSON.parse(r.stdout).summary as Record<string, { statements: number }>).reduce((s, c) => s + c.statements, 0)
      expect(total).toBeGreaterThan(((mb * 1e6) / 106) * 0.95)
      expect(statSync(path).size).toBeGreaterThan(mb * 1e6 * 0.8)
      rss.push(Number(/maxrss=(\d+)/.exec(r.stderr)![1]) * 1024)
      console.log(`sql lint of a ${mb} MB general log: peak RSS ${(rss.at(-1)! / 1e6).toFixed(0)} MB`)
      rmSync(path)
    }
    expect(rss[1]!).toBeLessThan(rss[0]! * 1.25)
    expect(rss[1]!).toBeLessThan(300 * 1024 * 1024)
  }, 120_000)

  it('--schema reports unique keys without the user column, triggers, views and AUTO_INCREMENT on the legacy table', async () => {
    const config = testFleetConfig({ prefix })
    await createLegacyTable(config)
    const t = qualified(config.legacy.database, config.legacy.table)
    const pool = adminPool()
    try {
      expect((await run(['sql', 'lint', '--schema'])).code).toBe(0)
      await pool.query(`ALTER TABLE ${t} MODIFY order_id BIGINT NOT NULL AUTO_INCREMENT, ADD UNIQUE KEY uk_phone (phone), ADD UNIQUE KEY uk_user_note (user_id, note)`)
      await pool.query(`CREATE TRIGGER ${qualified(config.legacy.database, 'orders_touch')} BEFORE UPDATE ON ${t} FOR EACH ROW SET NEW.version = NEW.version + 1`)
      await pool.query(`CREATE TABLE ${qualified(config.legacy.database, 'payments')} (id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, CONSTRAINT fk_payment_order FOREIGN KEY (order_id) REFERENCES ${t} (order_id)) ENGINE=InnoDB`)
      await pool.query(`CREATE VIEW ${qualified(config.legacy.database, 'paid_orders')} AS SELECT order_id FROM ${t} WHERE status = 'paid'`)
    } finally {
      await pool.end()
    }
    const r = await run(['sql', 'lint', '--schema', '--json'])
    expect(r.code).toBe(4)
    const kinds = (JSON.parse(r.stdout).findings as { kind: string; object: string; message: string }[]).map((f) => `${f.kind}:${f.object}`).sort()
    expect(kinds).toEqual(['auto-increment:orders.order_id', 'foreign-key:fk_payment_order', 'trigger:orders_touch', 'unique-key:uk_phone', `view:${config.legacy.database}.paid_orders`])
    const text = await run(['sql', 'lint', '--schema'])
    expect(text.stdout).toMatch(/uk_phone.*make it \(user_id, phone\) or enforce it in a lookup table/)
  })
})

describe('shardctl sql explain', () => {
  it('a query by user names exactly one shard with its physical table and per-shard SQL', async () => {
    const r = await run(['sql', 'explain', 'SELECT * FROM orders WHERE user_id = ? ORDER BY created_at DESC LIMIT 10', '--params', '["12345"]', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const plan = JSON.parse(r.stdout)
    expect(plan).toMatchObject({ class: 'user', shards: [105], stage: 'shards', servedBy: 'shards' })
    expect(plan.targets).toHaveLength(1)
    expect(plan.targets[0].table).toBe('orders_105')
    const text = await run(['sql', 'explain', 'SELECT * FROM orders WHERE user_id = 12345', '--stage', 'dual-write'])
    expect(text.stdout).toMatch(/shards:\s+105 \(1 logical\)/)
    expect(text.stdout).toMatch(/served by legacy/)
  })

  it('issue 18: a multi-shard read carries its merge as data; a join tied only by OR is unsupported', async () => {
    const r = await run(['sql', 'explain', 'SELECT status, COUNT(*) FROM orders WHERE user_id IN (1, 2) GROUP BY status', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ class: 'multi', shards: [1, 2], mergePlan: { kind: 'groups', groupBy: [{ index: 0 }], combine: ['key', 'sum'] } })
    const j = await run(['sql', 'explain', 'SELECT a.order_id FROM orders a JOIN orders b ON a.user_id = b.user_id OR a.merchant_id = b.merchant_id WHERE a.user_id = 5', '--json'])
    expect(JSON.parse(j.stdout)).toMatchObject({ class: 'unsupported', reasons: ['cross-shard-join'], targets: [] })
  })

  it('bad --params and --stage are usage errors naming the argument', async () => {
    const a = await run(['sql', 'explain', 'SELECT * FROM orders WHERE user_id = ?', '--params', '{nope'])
    expect([a.code, a.stderr]).toEqual([2, expect.stringContaining('--params')])
    const b = await run(['sql', 'explain', 'SELECT 1', '--stage', 'later'])
    expect([b.code, b.stderr]).toEqual([2, expect.stringContaining('--stage')])
  })
})
