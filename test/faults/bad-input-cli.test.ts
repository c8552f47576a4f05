/**
 * Wrong arguments for every shardctl command, through the real CLI process on
 * a provisioned fleet with rows in legacy and state in Redis: each exits 2
 * with a message naming the argument, and nothing is written (every table
 * under the test prefix, control tables included, and every Redis key under
 * its key prefix are unchanged). Broken config files are covered by the
 * catalogue in test/unit/config-schema.test.ts; here two of them are run
 * through the CLI to prove the exit code and the "nothing written".
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { RowDataPacket } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'
import { openRuntime, provision, qualified, quoteIdent } from '../../src/index.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'

const prefix = testPrefix('badcli')
const keyPrefix = `${prefix.replace(/_$/, '')}:`
const dir = mkdtempSync(join(tmpdir(), 'shardkit-badcli-'))
const configPath = join(dir, 'shardkit.json')
const root = join(import.meta.dirname, '..', '..')
const raw = buildConfig({ legacyUrl: testMysqlUrl(), legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000', shardHosts: [testMysqlUrl()], databasesPerHost: 2, prefix, redisUrl: testRedisUrl(), redisKeyPrefix: keyPrefix })
const config = parseConfig(raw, {})
const admin = adminPool()
const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 2 })

function shardctl(args: string[], cfg = configPath): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', cfg, ...args], { cwd: root, env: { ...process.env, SHARDKIT_LOG_LEVEL: 'warn', SHARDKIT_ACTOR: 'badcli' } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** Every table under the prefix (rows + CHECKSUM) and every Redis key under the key prefix (type + value). */
async function snapshot(): Promise<string> {
  const h = createHash('sha256')
  const [tables] = await admin.query<RowDataPacket[]>('SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE ? ORDER BY 1, 2', [`${prefix.replaceAll('_', '\\_')}%`])
  for (const r of tables) {
    const [c] = await admin.query<RowDataPacket[]>(`CHECKSUM TABLE ${qualified(r.db as string, r.t as string)}`)
    const [n] = await admin.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${quoteIdent(r.db as string)}.${quoteIdent(r.t as string)}`)
    h.update(`${r.db}.${r.t}:${String(c[0]!.Checksum)}:${String(n[0]!.n)}\n`)
  }
  const keys = (await redis.keys(`${keyPrefix}*`)).sort()
  for (const k of keys) {
    const type = await redis.type(k)
    const v = type === 'string' ? await redis.get(k) : type === 'hash' ? JSON.stringify(Object.entries(await redis.hgetall(k)).sort()) : type === 'zset' ? JSON.stringify(await redis.zrange(k, 0, -1, 'WITHSCORES')) : type === 'list' ? JSON.stringify(await redis.lrange(k, 0, -1)) : type === 'set' ? JSON.stringify((await redis.smembers(k)).sort()) : type
    h.update(`${k}:${type}:${v}\n`)
  }
  return `${tables.length} tables, ${keys.length} keys, ${h.digest('hex')}`
}

/** [args, text the message must contain (the argument's name)] */
const cases: Array<[string[], string]> = [
  [['backfill', '--concurrency', '0'], '--concurrency'],
  [['backfill', '--concurrency', '2.5'], '--concurrency'],
  [['backfill', '--chunk-size', 'abc'], '--chunk-size'],
  [['backfill', '--chunk-size', '0'], '--chunk-size'],
  [['backfill', '--dimension', 'foo'], '--dimension'],
  [['backfill', '--max-rows-per-second', '-5'], '--max-rows-per-second'],
  [['backfill', '--force'], '--reason'],
  [['backfill', '--bogus'], '--bogus'],
  [['verify', '--dimension', 'foo'], '--dimension'],
  [['verify', '--rounds', 'abc'], '--rounds'],
  [['verify', '--rounds', '21'], '--rounds'],
  [['verify', '--chunk-size', 'abc'], '--chunk-size'],
  [['verify', '--concurrency', '0'], '--concurrency'],
  [['verify', '--since', 'last tuesday'], '--since'],
  [['route', '--user', '-1'], '--user'],
  [['route', '--user', '100000000000000000000'], '--user'],
  [['route', '--merchant', '1.5'], '--merchant'],
  [['route', '--order', 'abc'], '--order'],
  [['route'], '--user'],
  [['id', 'new'], '--user'],
  [['id', 'new', '--user', '-1'], '--user'],
  [['id', 'new', '--user', '1', '--count', '0'], '--count'],
  [['id', 'decode', 'abc'], 'abc'],
  [['cutover', 'advance', '--percent', 'abc'], '--percent'],
  [['cutover', 'advance', '--ack-timeout-ms', 'soon'], '--ack-timeout-ms'],
  [['cutover', 'advance', '--drain-timeout-ms', '-1'], '--drain-timeout-ms'],
  [['cutover', 'advance', '--force'], '--reason'],
  [['cutover', 'rollback', '--bogus'], '--bogus'],
  [['cutover', 'history', '--limit', '0'], '--limit'],
  [['dualwrite', 'drain', '--timeout-ms', 'abc'], '--timeout-ms'],
  [['dualwrite', 'status', '--bogus'], '--bogus'],
  [['events', 'relay', '--batch', '0'], '--batch'],
  [['events', 'relay', '--lease-ttl', 'x'], '--lease-ttl'],
  [['events', 'status', '--cap', '-1'], '--cap'],
  [['repair'], '--report'],
  [['provision', '--bogus'], '--bogus'],
  [['config', 'init'], '--legacy'],
  [['config', 'show', '--bogus'], '--bogus'],
  [['sql', 'explain', 'SELECT * FROM orders WHERE user_id = ?', '--stage', 'nope'], '--stage'],
  [['sql', 'explain', 'SELECT * FROM orders WHERE user_id = ?', '--params', 'not json'], '--params'],
  [['sql', 'lint', '--max-statement-bytes', 'abc'], '--max-statement-bytes'],
  [['frobnicate'], 'frobnicate'],
]

const results = new Map<string, { code: number; stdout: string; stderr: string }>()
let before = ''

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify(raw, null, 2))
  await createLegacyTable(config)
  await admin.query(`INSERT INTO ${qualified(config.legacy.database, config.legacy.table)} (order_id, user_id, merchant_id, status, total_cents, currency, items, created_at, updated_at) VALUES (11, 1, 2, 'created', 100, 'CNY', '[]', NOW(3), NOW(3)), (12, 3, 4, 'paid', 200, 'CNY', '[]', NOW(3), NOW(3))`)
  const rt = openRuntime(config)
  try {
    await provision(rt)
  } finally {
    await rt.close()
  }
  await redis.set(`${keyPrefix}badcli-marker`, 'x')
  before = await snapshot()
  // Run every case, four at a time (each is a node process).
  const queue = [...cases]
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) results.set(c[0].join(' '), await shardctl(c[0]))
    }),
  )
}, 240_000)

afterAll(async () => {
  const keys = await redis.keys(`${keyPrefix}*`)
  if (keys.length) await redis.del(...keys)
  redis.disconnect()
  await admin.end()
  await dropPrefixedDatabases(prefix)
  rmSync(dir, { recursive: true, force: true })
})

describe('wrong CLI arguments: exit 2, the argument named, nothing written', () => {
  it.each(cases.map(([args, name]) => [args.join(' '), name]))('shardctl %s', (key, name) => {
    const r = results.get(key)!
    expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(2)
    expect(r.stderr).toContain(name)
    expect(r.stderr).not.toMatch(/^\s+at /m) // no stack trace without --debug
  })

  it('broken config files (from the config-schema catalogue) exit 2 naming the field', async () => {
    const bad1 = join(dir, 'bad1.json')
    writeFileSync(bad1, JSON.stringify({ ...raw, redis: { ...(raw as { redis: object }).redis, url: 'http://nope' } }))
    const bad2 = join(dir, 'bad2.json')
    writeFileSync(bad2, '{ "version": 1, ')
    for (const [file, field] of [[bad1, 'redis'], [bad2, 'JSON']] as const) {
      const r = await shardctl(['route', '--user', '1'], file)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(field)
    }
  })

  it('every table and every Redis key is unchanged', async () => {
    expect(await snapshot()).toBe(before)
  })
})
