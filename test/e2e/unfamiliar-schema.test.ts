/**
 * Issue 16, end to end: a legacy table none of our fixtures resemble (its
 * primary key is `purchase_no`, its keys `buyer_id`/`seller_id` are unsigned
 * or nullable, it holds binary tokens, BIT flags, FLOAT weights, JSON and
 * TIMESTAMPs, and a few rows no key routes) goes through config init,
 * config check and sql lint (the missing version column and its ALTER),
 * provision, dual writes, backfill, verify, repair and the whole cutover,
 * all through `shardctl`, while a dual-write store in this process writes at
 * every stage. It ends with every copy byte-exact against a check written in
 * SQL here (HEX() of each column), not through shardkit's hash.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Connection, RowDataPacket } from 'mysql2/promise'
import { parseConfig, type ShardkitConfig } from '../../src/config/schema.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified, quoteIdent } from '../../src/runtime/mysql.js'
import { StageWatcher } from '../../src/cutover/watcher.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { shardOfKey, type Dimension } from '../../src/router/shard-function.js'
import { dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'
import { deleteRedisKeys } from '../integration/cutover-support.js'
import { newOrderId } from '../integration/dualwrite-support.js'
import { utcConnection } from '../integration/column-catalogue-support.js'

const prefix = testPrefix('unfamiliar')
const dir = mkdtempSync(join(tmpdir(), 'shardkit-unfamiliar-'))
const cfgPath = join(dir, 'shardkit.json')
const root = join(import.meta.dirname, '..', '..')
const DB = `${prefix}shop`
const TABLE = qualified(DB, 'purchases')
const COLUMNS = ['purchase_no', 'buyer_id', 'seller_id', 'state', 'version', 'token', 'flags', 'weight', 'attrs', 'paid_at']
const UNROUTABLE = ['7', '8', '9']
let sql: Connection
let config: ShardkitConfig
let rt: Runtime
let watcher: StageWatcher
let store: DualWriteStore
/** Orders the store inserted, with their keys. */
const written = new Map<string, { b: string; s: string }>()

function shardctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', cfgPath, ...args], { cwd: root, env: { ...process.env, SHARDKIT_ACTOR: 'e2e-unfamiliar', SHARDKIT_LOG_LEVEL: 'warn' }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** A buyer id from across BIGINT UNSIGNED, most of them above 2^63-1. */
const buyer = (i: number) => String(i % 4 === 0 ? BigInt(i) : 2n ** 64n - 1n - BigInt(i) * 7919n)
const seller = (i: number) => String(1000 + (i % 37))

beforeAll(async () => {
  sql = await utcConnection(testMysqlUrl())
  await sql.query(`CREATE DATABASE ${quoteIdent(DB)}`)
  // No version column yet: config check and sql lint must say so, with the ALTER to run.
  await sql.query(`CREATE TABLE ${TABLE} (
    purchase_no BIGINT UNSIGNED NOT NULL,
    buyer_id BIGINT UNSIGNED NULL,
    seller_id BIGINT NULL,
    state VARCHAR(16) NOT NULL,
    token VARBINARY(16) NOT NULL,
    flags BIT(8) NOT NULL,
    weight FLOAT NOT NULL,
    attrs JSON NULL,
    paid_at TIMESTAMP(6) NULL DEFAULT NULL,
    PRIMARY KEY (purchase_no),
    KEY idx_buyer (buyer_id),
    KEY idx_seller (seller_id)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
  const rows: unknown[][] = []
  for (let i = 1; i <= 120; i++) {
    const b = i === 7 || i === 9 ? null : buyer(i)
    const s = i === 8 ? '-5' : i === 9 ? null : seller(i)
    rows.push([String(i), b, s, 'created', Buffer.from([0x00, 0xff, i, 0xc3, 0x28]), Buffer.from([i & 0xff]), Math.fround(1.0000001192 + i / 3), `{"z": ${i},  "a": "é"}`, `2024-03-10 02:30:00.${String(i).padStart(6, '0')}`])
  }
  await sql.query(`INSERT INTO ${TABLE} (purchase_no, buyer_id, seller_id, state, token, flags, weight, attrs, paid_at) VALUES ?`, [rows])
}, 120_000)

afterAll(async () => {
  await watcher?.close().catch(() => undefined)
  await store?.flush().catch(() => undefined)
  await rt?.close()
  await sql?.end()
  rmSync(dir, { recursive: true, force: true })
  if (config) await deleteRedisKeys(config.redis.keyPrefix).catch(() => undefined)
  await dropPrefixedDatabases(prefix)
})

function shardTable(dim: Dimension, key: string): string {
  const p = config.dimensions[dim].shards[shardOfKey(key)]!
  return qualified(p.database, p.table)
}

/** HEX() of every column of a row (the FLOAT as its exact double's digits, the TIMESTAMP as UTC text: this session is +00:00). */
async function bytesOf(table: string, id: string): Promise<Record<string, string | null> | undefined> {
  const exprs = COLUMNS.map((c) => (c === 'weight' ? `CAST(CAST(weight AS DOUBLE) AS CHAR)` : c === 'paid_at' ? `HEX(CAST(paid_at AS CHAR))` : `HEX(${quoteIdent(c)})`) + ` AS ${quoteIdent(c)}`)
  const [rows] = await sql.query<RowDataPacket[]>(`SELECT ${exprs.join(', ')} FROM ${table} WHERE purchase_no = ?`, [id])
  return rows[0] as Record<string, string | null> | undefined
}

/** Writes through the store at the current stage: one new order and a state change of a legacy one. */
async function writeSome(tag: string, legacyIds: string[]): Promise<void> {
  const b = buyer(1000 + written.size * 5 + 1)
  const sl = seller(written.size)
  const id = newOrderId(b)
  await store.insert({ purchase_no: id, buyer_id: b, seller_id: sl, state: 'created', token: Buffer.from([0xfe, 0x00, written.size]), flags: Buffer.from([0x81]), weight: Math.fround(0.1), attrs: `{"tag": "${tag}"}`, paid_at: '2025-01-01 00:00:00.000001' })
  written.set(id, { b, s: sl })
  for (const l of legacyIds) await store.update(l, { state: tag.slice(0, 16) })
  await store.update(id, { state: 'paid' })
}

async function advance(...extra: string[]): Promise<void> {
  const r = await shardctl('cutover', 'advance', '--reason', 'e2e unfamiliar schema', '--json', '--yes', ...extra)
  expect(r.code, r.stderr + r.stdout).toBe(0)
  // The in-process instance follows the stage before anything else is written.
  const want = JSON.parse(r.stdout).to?.version
  for (let i = 0; i < 100 && watcher.current()?.version !== want; i++) await new Promise((res) => setTimeout(res, 50))
  expect(watcher.current()?.version).toBe(want)
}

async function verifyClean(): Promise<void> {
  const v = await shardctl('verify', '--json', '--rounds', '1')
  expect(v.code, v.stdout + v.stderr).toBe(0)
}

describe('an unfamiliar legacy table, end to end through shardctl', () => {
  it('config init takes the control database from --control\'s path; config check and sql lint print the version ALTER', async () => {
    const init = await shardctl(
      'config', 'init', '--legacy', testMysqlUrl(), '--table', `${DB}.purchases`, '--primary-key', 'purchase_no', '--user-column', 'buyer_id', '--merchant-column', 'seller_id',
      '--shard-host', testMysqlUrl(), '--prefix', prefix, '--control', `${testMysqlUrl()}/${prefix}ctl`, '--redis', testRedisUrl(), '-o', cfgPath,
    )
    expect(init.code, init.stderr).toBe(0)
    config = parseConfig(JSON.parse(readFileSync(cfgPath, 'utf8')), process.env)
    expect(config.control.database).toBe(`${prefix}ctl`)
    expect(config.legacy.idCeiling).toBe('120')

    const check = await shardctl('config', 'check', '--json')
    expect(check.code, check.stderr).toBe(3)
    const c = JSON.parse(check.stdout)
    expect(c.ok).toBe(false)
    expect(c.servers.legacy).toMatch(/^MariaDB 10\./)
    const version = c.problems.find((p: { kind: string }) => p.kind === 'version-column')
    expect(version.fix).toBe(`ALTER TABLE ${TABLE} ADD COLUMN \`version\` INT UNSIGNED NOT NULL DEFAULT 1, ALGORITHM=INSTANT`)
    expect(c.notes.join('\n')).toMatch(/buyer_id .*NULL.*"unroutable"/)
    expect(c.notes.join('\n')).toMatch(/seller_id .*NULL or negative/)

    const lint = await shardctl('sql', 'lint', '--schema', '--json')
    expect(lint.code).toBe(4)
    expect(JSON.parse(lint.stdout).findings.map((f: { kind: string; fix?: string }) => `${f.kind}:${f.fix}`)).toEqual([`version-column:${version.fix}`])
    await sql.query(version.fix)
    expect((await shardctl('config', 'check')).code).toBe(0)
    expect((await shardctl('sql', 'lint', '--schema')).code).toBe(0)
  }, 120_000)

  it('provisions, dual-writes, backfills with the unroutable rows reported by key, and verify lists them', async () => {
    const p = await shardctl('provision', '--json')
    expect(p.code, p.stderr).toBe(0)
    rt = openRuntime(config)
    watcher = new StageWatcher(rt, { instanceId: `${prefix}svc`, heartbeatMs: 200, pollMs: 200 })
    await watcher.start()
    store = new DualWriteStore({ runtime: rt, stage: watcher })
    await advance() // dual-write
    await writeSome('dual', ['1', '2'])

    const bf = await shardctl('backfill', '--json')
    expect(bf.code, bf.stderr).toBe(0)
    const b = JSON.parse(bf.stdout)
    expect(b.completed).toBe(true)
    expect(b.unroutable.rows).toBe(3)
    expect(b.unroutable.listed).toEqual([
      { key: '7', column: 'buyer_id', reason: 'null' },
      { key: '8', column: 'seller_id', reason: 'negative' },
      { key: '9', column: 'buyer_id', reason: 'null' },
    ])
    const text = await shardctl('backfill', '--restart')
    expect(text.stdout).toMatch(/3 rows were not copied because a key has no shard: 7 \(buyer_id null\), 8 \(seller_id negative\), 9 \(buyer_id null\)/)

    const report = join(dir, 'report-1.json')
    const v = await shardctl('verify', '--json', '--rounds', '1', '--report', report)
    expect(v.code).toBe(4)
    const s = JSON.parse(v.stdout)
    expect(s.unroutable).toBe(3)
    expect(JSON.parse(readFileSync(report, 'utf8')).differences).toEqual(UNROUTABLE.map((key) => ({ pair: 'legacy-user', kind: 'unroutable', key })))
  }, 180_000)

  it('a one-bit change in a copy is found and repaired; the fixed unroutable rows are copied; verify is clean', async () => {
    // A bit of one copy's binary token flips.
    const t = shardTable('user', buyer(3))
    await sql.query(`UPDATE ${t} SET token = CONCAT(LEFT(token, 4), CHAR(ASCII(SUBSTRING(token, 5, 1)) ^ 1)) WHERE purchase_no = 3`)
    // The operator gives the unroutable rows their keys, then copies them.
    await sql.query(`UPDATE ${TABLE} SET buyer_id = ?, seller_id = ? WHERE purchase_no IN (?)`, ['18446744073709551615', '77', UNROUTABLE])
    const again = await shardctl('backfill', '--restart', '--json')
    expect(JSON.parse(again.stdout).unroutable.rows).toBe(0)

    const report = join(dir, 'report-2.json')
    const v = await shardctl('verify', '--json', '--rounds', '1', '--report', report)
    expect(v.code).toBe(4)
    const diffs = JSON.parse(readFileSync(report, 'utf8')).differences as { pair: string; kind: string; key: string }[]
    expect(diffs).toContainEqual({ pair: 'legacy-user', kind: 'different', key: '3', shard: shardOfKey(buyer(3)) })
    expect(new Set(diffs.map((d) => `${d.kind}:${d.key}`))).toEqual(new Set(['different:3']))
    const r = await shardctl('repair', '--report', report, '--execute', '--json')
    expect(r.code, r.stderr + r.stdout).toBe(0)
    await verifyClean()
  }, 180_000)

  it('the whole cutover, writing at every stage, ends with every copy byte-exact in SQL', async () => {
    for (const step of [[], [], ['--percent', '100'], [], []]) {
      await advance(...step)
      const stage = watcher.current()!.stage
      // From `shards` on legacy takes no writes: change only the order written there.
      await writeSome(stage, stage === 'shards' ? [] : ['4', '7', ...written.keys()].slice(0, 3))
      await store.flush()
      if (stage !== 'shards') await verifyClean()
    }
    expect(watcher.current()!.stage).toBe('shards')
    await verifyClean()

    // Every row legacy holds, on every copy, byte for byte.
    const [ids] = await sql.query<RowDataPacket[]>(`SELECT purchase_no AS id, buyer_id AS b, seller_id AS s FROM ${TABLE} ORDER BY purchase_no`)
    expect(ids.length).toBe(120 + written.size - 1)
    for (const r of ids) {
      const want = await bytesOf(TABLE, String(r.id))
      expect(await bytesOf(shardTable('user', String(r.b)), String(r.id)), `user copy of ${r.id}`).toEqual(want)
      expect(await bytesOf(shardTable('merchant', String(r.s)), String(r.id)), `merchant copy of ${r.id}`).toEqual(want)
    }
    // The order written at `shards` is in the two dimensions only, the same in both.
    const [last, k] = [...written].at(-1)!
    expect(await bytesOf(TABLE, last)).toBeUndefined()
    const inUser = await bytesOf(shardTable('user', k.b), last)
    expect(inUser?.state).toBe(Buffer.from('paid').toString('hex').toUpperCase())
    expect(await bytesOf(shardTable('merchant', k.s), last)).toEqual(inUser)
    // Each dimension holds each order once.
    for (const dim of ['user', 'merchant'] as const) {
      const parts = config.dimensions[dim].shards.map((p) => `SELECT purchase_no FROM ${qualified(p.database, p.table)}`).join(' UNION ALL ')
      const [[n]] = await sql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n, COUNT(DISTINCT purchase_no) AS d FROM (${parts}) t`)
      expect(n).toEqual({ n: String(120 + written.size), d: String(120 + written.size) })
    }
  }, 300_000)
})
