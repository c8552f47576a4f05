/**
 * The rehearsal's own fleet: a legacy database seeded with orders, a config
 * spreading 120 + 120 shards over several databases, provisioned, and the
 * cleanup that drops exactly what this run created (databases under its
 * unique prefix, Redis keys under its key prefix).
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { Redis } from 'ioredis'
import { buildConfig, createMysqlPool, parseConfig, quoteIdent, redactUrl, ShardkitError, type ShardkitConfig } from '../../src/index.js'
import { legacyOrdersDDL } from '../../fixtures/legacy-schema.js'

/** `skdemo_<8 hex>_`: every database this run creates starts with it. */
export function demoPrefix(): string {
  return `skdemo_${randomBytes(4).toString('hex')}_`
}

const PREFIX_RE = /^skdemo_[0-9a-f]{8}_$/

/** Creates `<prefix>legacy`.orders (empty). */
export async function createLegacy(admin: Pool, prefix: string): Promise<{ database: string; table: string }> {
  const database = `${prefix}legacy`
  await admin.query(`CREATE DATABASE ${quoteIdent(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  await admin.query(legacyOrdersDDL(database, 'orders'))
  return { database, table: 'orders' }
}

/** The largest legacy order id (the config's idCeiling: new ids are all above it). */
export async function legacyCeiling(admin: Pool, database: string, table: string): Promise<string> {
  const [rows] = await admin.query<RowDataPacket[]>(`SELECT COALESCE(MAX(order_id), 0) AS m FROM ${quoteIdent(database)}.${quoteIdent(table)}`)
  return String(rows[0]!.m)
}

/** Writes the validated config (4 databases per dimension on the one server) to `<dir>/shardkit.json`. */
export function writeDemoConfig(dir: string, o: { prefix: string; mysqlUrl: string; redisUrl: string; legacyDatabase: string; idCeiling: string }): { path: string; config: ShardkitConfig } {
  const raw = buildConfig({
    legacyUrl: o.mysqlUrl,
    legacyDatabase: o.legacyDatabase,
    legacyTable: 'orders',
    idCeiling: o.idCeiling,
    shardHosts: [o.mysqlUrl],
    databasesPerHost: 4,
    prefix: o.prefix,
    redisUrl: o.redisUrl,
    redisKeyPrefix: `${o.prefix.replace(/_$/, '')}:`,
  })
  const config = parseConfig(raw, {})
  const path = join(dir, 'shardkit.json')
  writeFileSync(path, `${JSON.stringify(raw, null, 2)}\n`, { mode: 0o600 })
  return { path, config }
}

/** An admin pool on the demo server (no default database). */
export function adminPool(mysqlUrl: string): Pool {
  return createMysqlPool(mysqlUrl, { connectionLimit: 4 })
}

/** Checks that MariaDB and Redis answer; throws naming the one that does not and how to point at another. */
export async function checkServers(mysqlUrl: string, redisUrl: string): Promise<void> {
  const pool = adminPool(mysqlUrl)
  try {
    await pool.query('SELECT 1')
  } catch (err) {
    throw new ShardkitError('PRECONDITION_FAILED', `MariaDB/MySQL at ${redactUrl(mysqlUrl)} does not answer (${(err as { code?: string }).code ?? 'error'}); start it or set SHARDKIT_DEMO_MYSQL_URL`, {}, { cause: err })
  } finally {
    await pool.end()
  }
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => null })
  try {
    await r.connect()
    await r.ping()
  } catch (err) {
    throw new ShardkitError('PRECONDITION_FAILED', `Redis at ${redactUrl(redisUrl)} does not answer; start it or set SHARDKIT_DEMO_REDIS_URL`, {}, { cause: err })
  } finally {
    r.disconnect()
  }
}

/** Drops every database under this run's prefix and deletes its Redis keys. Returns what it removed. */
export async function removeFleet(mysqlUrl: string, redisUrl: string, prefix: string): Promise<{ databases: number; redisKeys: number }> {
  if (!PREFIX_RE.test(prefix)) throw new Error(`refusing to drop databases for unexpected prefix ${prefix}`)
  const pool = adminPool(mysqlUrl)
  let databases = 0
  try {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
    for (const r of rows) {
      await pool.query(`DROP DATABASE IF EXISTS ${quoteIdent(r.name as string)}`)
      databases++
    }
  } finally {
    await pool.end()
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 })
  let redisKeys = 0
  try {
    const keyPrefix = `${prefix.replace(/_$/, '')}:`
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) redisKeys += await redis.del(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
  return { databases, redisKeys }
}
