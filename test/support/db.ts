/**
 * Per-file test databases: a random prefix per file, databases created under
 * it, and a cleanup that drops only databases with that prefix.
 */
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { inject } from 'vitest'
import { buildConfig, type BuildConfigOptions } from '../../src/config/init.js'
import { parseConfig, type ShardkitConfig } from '../../src/config/schema.js'
import { createMysqlPool, quoteIdent } from '../../src/runtime/mysql.js'
import { legacyOrdersDDL } from '../../fixtures/legacy-schema.js'

/** `skt_<label>_<6 hex>_`: every database a test file makes starts with it. */
export function testPrefix(label: string): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 12) || 't'
  return `skt_${clean}_${randomBytes(3).toString('hex')}_`
}

export function testMysqlUrl(): string {
  return inject('mysqlUrl')
}

export function testRedisUrl(): string {
  return inject('redisUrl')
}

/** A pool on the test server without a default database. The caller ends it. */
export function adminPool(url = testMysqlUrl()): mysql.Pool {
  return createMysqlPool(url, { connectionLimit: 4 })
}

/** Drops every database whose name starts with `prefix` (and nothing else). */
export async function dropPrefixedDatabases(prefix: string, url = testMysqlUrl()): Promise<void> {
  if (!/^skt_[a-z0-9]+_[0-9a-f]{6}_$/.test(prefix)) throw new Error(`refusing to drop databases for unexpected prefix ${prefix}`)
  const pool = adminPool(url)
  try {
    const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
    for (const r of rows) await pool.query(`DROP DATABASE IF EXISTS ${quoteIdent(r.name as string)}`)
  } finally {
    await pool.end()
  }
}

export interface TestFleetOptions extends Partial<BuildConfigOptions> {
  readonly prefix: string
}

/**
 * A validated config for a test fleet on the test server: legacy database
 * `<prefix>legacy` with table `orders`, 120 + 120 shards over 2 databases
 * per dimension (4 databases), control database `<prefix>control`, Redis key
 * prefix `<prefix>:`. Creates nothing.
 */
export function testFleetConfig(o: TestFleetOptions): ShardkitConfig {
  return parseConfig(testFleetRaw(o), process.env)
}

/** The config file's JSON behind {@link testFleetConfig}, for tests that write it for `shardctl -c`. */
export function testFleetRaw(o: TestFleetOptions): ReturnType<typeof buildConfig> {
  const url = o.legacyUrl ?? testMysqlUrl()
  return buildConfig({
    legacyUrl: url,
    legacyDatabase: `${o.prefix}legacy`,
    legacyTable: 'orders',
    idCeiling: '1000000000',
    shardHosts: [url],
    databasesPerHost: 2,
    redisUrl: testRedisUrl(),
    ...o,
    redisKeyPrefix: o.redisKeyPrefix ?? `${o.prefix.replace(/_$/, '')}:`,
  })
}

/** Creates the legacy database and its `orders` table for a test fleet. */
export async function createLegacyTable(config: ShardkitConfig): Promise<void> {
  const pool = adminPool(config.legacy.url)
  try {
    await pool.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(config.legacy.database)}`)
    await pool.query(legacyOrdersDDL(config.legacy.database, config.legacy.table))
  } finally {
    await pool.end()
  }
}
