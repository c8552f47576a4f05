/**
 * Least privilege. `provision` runs as an admin; then the order service (a
 * real process) runs under a MySQL user with only SELECT, INSERT, UPDATE,
 * DELETE on the legacy, shard and control databases, at `dual-write`, through
 * creates, status changes and reads; that user is refused CREATE, ALTER, DROP.
 * `backfill` and `verify` then run under their own smaller grant sets (the
 * table in docs: backfill reads legacy and writes shards + control; verify
 * only reads, and records its run in control). Found by this test: backfill
 * also needs DELETE on control, as its checkpoint is saved with REPLACE), and verify is clean.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startService, type ServiceInstance } from '../../examples/demo/processes.js'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'
import { qualified, quoteIdent } from '../../src/index.js'
import { deleteRedisKeys } from '../integration/cutover-support.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'

const prefix = testPrefix('privs')
const keyPrefix = `${prefix.replace(/_$/, '')}:`
const dir = mkdtempSync(join(tmpdir(), 'shardkit-privs-'))
const root = join(import.meta.dirname, '..', '..')
const server = new URL(testMysqlUrl())
const hostPort = `${server.hostname}:${server.port || 3306}`
const admin = adminPool()
const tag = randomBytes(4).toString('hex')
const users = { app: `sk_app_${tag}`, backfill: `sk_bf_${tag}`, verify: `sk_vf_${tag}` } as const
const passwords = Object.fromEntries(Object.keys(users).map((k) => [k, randomBytes(12).toString('hex')])) as Record<keyof typeof users, string>

function writeConfig(name: string, url: string): string {
  const raw = buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000', shardHosts: [url], databasesPerHost: 2, prefix, redisUrl: testRedisUrl(), redisKeyPrefix: keyPrefix })
  const path = join(dir, `${name}.json`)
  writeFileSync(path, JSON.stringify(raw, null, 2), { mode: 0o600 })
  return path
}
const rootConfig = writeConfig('root', testMysqlUrl().replace(/\/$/, ''))
const urlOf = (k: keyof typeof users) => `mysql://${users[k]}:${passwords[k]}@${hostPort}`
const configs = { app: writeConfig('app', urlOf('app')), backfill: writeConfig('backfill', urlOf('backfill')), verify: writeConfig('verify', urlOf('verify')) }
const config = parseConfig(buildConfig({ legacyUrl: testMysqlUrl(), legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000', shardHosts: [testMysqlUrl()], databasesPerHost: 2, prefix, redisUrl: testRedisUrl(), redisKeyPrefix: keyPrefix }), {})
const legacyDb = config.legacy.database
const shardDbs = [...new Set([...config.dimensions.user.shards, ...config.dimensions.merchant.shards].map((p) => p.database))]
const controlDb = config.control.database

function shardctl(cfg: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', cfg, ...args], { cwd: root, env: { ...process.env, SHARDKIT_LOG_LEVEL: 'warn', SHARDKIT_ACTOR: 'privs-test' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function grant(user: string, privs: string, dbs: readonly string[]): Promise<void> {
  // `_` is a wildcard in GRANT database names: escape it so each grant names exactly one database.
  for (const db of dbs) await admin.query(`GRANT ${privs} ON ${quoteIdent(db.replaceAll('_', '\\_'))}.* TO ?@'127.0.0.1'`, [user])
}

let svc: ServiceInstance | undefined
beforeAll(async () => {
  for (const k of Object.keys(users) as Array<keyof typeof users>) await admin.query(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [users[k], passwords[k]])
  await createLegacyTable(config)
  const values = Array.from({ length: 200 }, (_, i) => [1000 + i, (i % 17) + 1, (i % 5) + 1, 'created', 100 + i, 'CNY', '[]', new Date(), new Date()])
  await admin.query(`INSERT INTO ${qualified(legacyDb, 'orders')} (order_id, user_id, merchant_id, status, total_cents, currency, items, created_at, updated_at) VALUES ?`, [values])
  const p = await shardctl(rootConfig, 'provision')
  expect(p.code, p.stderr).toBe(0)
  // The grant sets of the docs' "Grants" table.
  const all = [legacyDb, ...shardDbs, controlDb]
  await grant(users.app, 'SELECT, INSERT, UPDATE, DELETE', all)
  await grant(users.backfill, 'SELECT', [legacyDb])
  await grant(users.backfill, 'SELECT, INSERT, UPDATE', shardDbs)
  await grant(users.backfill, 'SELECT, INSERT, UPDATE, DELETE', [controlDb]) // the checkpoint is saved with REPLACE
  await grant(users.verify, 'SELECT', [legacyDb, ...shardDbs])
  await grant(users.verify, 'SELECT, INSERT, UPDATE', [controlDb])
  const adv = await shardctl(rootConfig, 'cutover', 'advance', '--reason', 'privileges test')
  expect(adv.code, adv.stderr).toBe(0)
}, 180_000)

afterAll(async () => {
  await svc?.stop()
  for (const u of Object.values(users)) await admin.query(`DROP USER IF EXISTS ?@'127.0.0.1'`, [u])
  await admin.end()
  await deleteRedisKeys(keyPrefix).catch(() => undefined)
  await dropPrefixedDatabases(prefix)
  rmSync(dir, { recursive: true, force: true })
})

describe('least privilege', () => {
  it('the order service runs at dual-write under a user with only SELECT, INSERT, UPDATE, DELETE', async () => {
    svc = await startService(configs.app, `${prefix}svc`, join(dir, 'service.log'), 60_000)
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${svc.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: String(40 + i), merchant_id: '7', total_cents: 100, items: [{ sku: 'A', qty: 1, price_cents: 100 }] }) })
      expect(res.status, await res.clone().text()).toBe(201)
      ids.push(((await res.json()) as { order_id: string }).order_id)
    }
    const st = await fetch(`${svc.url}/orders/${ids[0]}/status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'paid' }) })
    expect(st.status, await st.clone().text()).toBe(200)
    // A legacy order (written by the legacy app) changes status through the service too.
    const legacy = await fetch(`${svc.url}/orders/1000/status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'paid' }) })
    expect(legacy.status, await legacy.clone().text()).toBe(200)
    const got = await fetch(`${svc.url}/orders/${ids[0]}`)
    expect(((await got.json()) as { status: string }).status).toBe('paid')
    expect((await fetch(`${svc.url}/users/40/orders`)).status).toBe(200)
    expect((await fetch(`${svc.url}/merchants/7/orders`)).status).toBe(200)
  }, 120_000)

  it('that user is refused CREATE, ALTER and DROP', async () => {
    const conn = await mysql.createConnection(urlOf('app'))
    try {
      for (const ddl of [
        `CREATE TABLE ${qualified(legacyDb, 'sneaky')} (a INT)`,
        `ALTER TABLE ${qualified(legacyDb, 'orders')} ADD COLUMN sneaky INT`,
        `DROP TABLE ${qualified(shardDbs[0]!, 'orders_000')}`,
        `CREATE DATABASE ${quoteIdent(`${prefix}sneaky`)}`,
        `TRUNCATE TABLE ${qualified(controlDb, 'order_lookup')}`,
      ]) {
        await expect(conn.query(ddl), ddl).rejects.toMatchObject({ code: expect.stringMatching(/ACCESS_DENIED|TABLEACCESS_DENIED|DBACCESS_DENIED/) })
      }
    } finally {
      await conn.end()
    }
  })

  it('backfill runs under SELECT on legacy, SELECT, INSERT, UPDATE on shards (+ DELETE on control); verify under SELECT + control writes, clean', async () => {
    const b = await shardctl(configs.backfill, 'backfill', '--json')
    expect(b.code, b.stderr).toBe(0)
    const v = await shardctl(configs.verify, 'verify', '--json')
    expect(v.code, `${v.stdout}\n${v.stderr}`).toBe(0)
    // And the backfill user cannot write legacy.
    const conn = await mysql.createConnection(urlOf('backfill'))
    try {
      await expect(conn.query(`DELETE FROM ${qualified(legacyDb, 'orders')} WHERE order_id = 1000`)).rejects.toMatchObject({ code: expect.stringMatching(/DENIED/) })
    } finally {
      await conn.end()
    }
  }, 180_000)
})
