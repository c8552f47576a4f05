/**
 * Issue 16: every column type survives insert, update, backfill, drain and
 * repair unchanged, on every copy, checked byte for byte in SQL; and verify
 * catches a one-bit change in each column.
 *
 * The shards live on an extra mariadbd whose default time zone is +05:30 and
 * whose global isolation level is READ COMMITTED (legacy and control stay on
 * the test server, in UTC): a TIMESTAMP copied as text between the two would
 * shift by 5h30 (point 2), and the safety core's locking needs REPEATABLE READ
 * whatever the global level says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise'
import { parseConfig, type ShardkitConfig } from '../../src/config/schema.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { createMysqlPool, qualified, quoteIdent } from '../../src/runtime/mysql.js'
import { provision } from '../../src/provision/index.js'
import { runBackfill } from '../../src/backfill/index.js'
import { runRepair, runVerify, type VerifyResult } from '../../src/verify/index.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import { shardOfKey, type Dimension } from '../../src/router/shard-function.js'
import { dropPrefixedDatabases, testFleetRaw, testMysqlUrl, testPrefix } from '../support/db.js'
import { startMariadbInstance, type MariadbInstance } from '../support/mariadb-instance.js'
import { FixedStage, hostPools, newOrderId } from './dualwrite-support.js'
import { deleteRedisKeys } from './cutover-support.js'
import { catalogueDDL, catalogueValues, oneBitAway, storedBytes, utcConnection, VALUE_COLUMNS, type ValueColumn } from './column-catalogue-support.js'

const prefix = testPrefix('catalogue')
let inst: MariadbInstance
let config: ShardkitConfig
let rt: Runtime
let pools: ReturnType<typeof hostPools>
let stage: FixedStage
let legacyConn: Connection
let shardConn: Connection
const ALL = ['status', 'version', ...VALUE_COLUMNS]
const ids: string[] = []
const users = new Map<string, { user: string; merchant: string }>()

beforeAll(async () => {
  inst = await startMariadbInstance({ extraArgs: ['--default-time-zone=+05:30', '--transaction-isolation=READ-COMMITTED'] })
  config = parseConfig(testFleetRaw({ prefix, shardHosts: [inst.url], controlUrl: testMysqlUrl() }), process.env)
  legacyConn = await utcConnection(config.legacy.url)
  shardConn = await utcConnection(inst.url)
  await legacyConn.query(`CREATE DATABASE ${quoteIdent(config.legacy.database)}`)
  await legacyConn.query(catalogueDDL(qualified(config.legacy.database, config.legacy.table)))
  rt = openRuntime(config)
  pools = hostPools(config)
  await provision(rt)
  stage = new FixedStage(config, pools.get, rt)
}, 180_000)

afterAll(async () => {
  await rt?.close()
  await pools?.end()
  await legacyConn?.end()
  await shardConn?.end().catch(() => undefined)
  await deleteRedisKeys(config.redis.keyPrefix).catch(() => undefined)
  await dropPrefixedDatabases(prefix)
  await inst?.destroy()
})

const LEGACY = () => qualified(config.legacy.database, config.legacy.table)
function shardTable(dim: Dimension, key: string): string {
  const p = config.dimensions[dim].shards[shardOfKey(key)]!
  return qualified(p.database, p.table)
}

/** Inserts a legacy row directly (a row that predates the migration), binding each value as itself. */
async function legacyInsert(id: string, user: string, merchant: string, i: number): Promise<void> {
  const v = catalogueValues(i)
  await legacyConn.query(`INSERT INTO ${LEGACY()} (order_id, user_id, merchant_id, status, ${VALUE_COLUMNS.join(', ')}) VALUES (?, ?, ?, 'created', ${VALUE_COLUMNS.map(() => '?').join(', ')})`, [id, user, merchant, ...VALUE_COLUMNS.map((c) => v[c])])
  ids.push(id)
  users.set(id, { user, merchant })
}

/** Every copy equals legacy byte for byte (SQL HEX() of each column), and each dimension holds exactly legacy's rows. */
async function expectByteExact(): Promise<void> {
  const want = await storedBytes(legacyConn, LEGACY(), ALL, ids)
  expect(want.size).toBe(ids.length)
  for (const id of ids) {
    const k = users.get(id)!
    for (const [dim, key] of [['user', k.user], ['merchant', k.merchant]] as const) {
      const got = await storedBytes(shardConn, shardTable(dim, key), ALL, [id])
      expect(got.get(id), `${dim} copy of ${id}`).toEqual(want.get(id))
    }
  }
  for (const dim of ['user', 'merchant'] as const) {
    const counts = await Promise.all(config.dimensions[dim].shards.map(async (p) => Number((await shardConn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(p.database, p.table)}`))[0][0]!.n)))
    expect(counts.reduce((a, b) => a + b, 0), `${dim} rows`).toBe(ids.length)
  }
}

const verify = (): Promise<VerifyResult> => runVerify(rt, { rounds: 1, roundDelayMs: 20, journalWaitMs: 500 })

describe('issue 16 point 2: every connection is UTC and REPEATABLE READ, whatever the server defaults', () => {
  it('the shard server really defaults to +05:30 and READ COMMITTED, and shardkit pools override both', async () => {
    const [[g]] = await shardConn.query<RowDataPacket[]>('SELECT @@global.time_zone AS tz, @@global.tx_isolation AS iso')
    expect(g).toEqual({ tz: '+05:30', iso: 'READ-COMMITTED' })
    const pool = createMysqlPool(inst.url, { connectionLimit: 2 })
    try {
      const [[s]] = await pool.query<RowDataPacket[]>('SELECT @@session.time_zone AS tz, @@session.tx_isolation AS iso')
      expect(s).toEqual({ tz: '+00:00', iso: 'REPEATABLE-READ' })
      const conn = await pool.getConnection()
      try {
        const [[c]] = await conn.query<RowDataPacket[]>('SELECT @@session.time_zone AS tz, @@session.tx_isolation AS iso')
        expect(c).toEqual({ tz: '+00:00', iso: 'REPEATABLE-READ' })
      } finally {
        conn.release()
      }
    } finally {
      await pool.end()
    }
    const [[h]] = await rt.host('h1').query<RowDataPacket[]>('SELECT @@session.time_zone AS tz, @@session.tx_isolation AS iso')
    expect(h).toEqual({ tz: '+00:00', iso: 'REPEATABLE-READ' })
  })
})

describe('issue 16: each column type through insert, update, backfill, drain and repair', () => {
  let store: DualWriteStore

  it('backfill copies rows with BIGINT UNSIGNED users above 2^63-1 and every type unchanged (point 3; point 2: TIMESTAMP by instant)', async () => {
    await legacyInsert('1', '18446744073709551614', '18446744073709551615', 0)
    await legacyInsert('2', '7', '241', 1)
    await legacyInsert('3', '9223372036854775808', '5', 2)
    await stage.set('dual-write')
    const r = await runBackfill(rt, { chunkSize: 2 })
    expect(r.completed).toBe(true)
    expect(r.rowsCopied).toBe(3)
    expect(r.unroutable.rows).toBe(0)
    await expectByteExact()
    // The shard server's own zone shows the same instant at +05:30.
    const own = await mysql.createConnection({ host: '127.0.0.1', port: inst.port, user: 'root', dateStrings: true })
    try {
      const [[local]] = await own.query<RowDataPacket[]>(`SELECT CAST(c_ts AS CHAR) AS t FROM ${shardTable('user', '7')} WHERE order_id = 2`)
      expect(local!.t).toBe('2024-03-10 08:00:00.654321')
    } finally {
      await own.end()
    }
  })

  it('the store inserts and updates rows with binary, BIT, GEOMETRY and FLOAT columns unchanged (point 1)', async () => {
    store = new DualWriteStore({ runtime: rt, stage, secondaryTimeoutMs: 1_000 })
    const id = newOrderId('18446744073709551613')
    await store.insert({ order_id: id, user_id: '18446744073709551613', merchant_id: '99999', status: 'created', ...catalogueValues(3) })
    ids.push(id)
    users.set(id, { user: '18446744073709551613', merchant: '99999' })
    // A status change re-binds the whole row: the VARBINARY(16) token became JSON text (ER_DATA_TOO_LONG), FLOAT lost digits.
    const after = await store.update(id, { status: 'paid' })
    expect(Buffer.isBuffer(after.c_token)).toBe(true)
    await store.update('1', { status: 'paid' })
    await store.update('3', { status: 'accepted' })
    await store.flush()
    await expectByteExact()
    expect((await verify()).clean).toBe(true)
  })

  it('writes journaled while the shard host is down are drained unchanged', async () => {
    await inst.stop()
    const id = newOrderId('42')
    try {
      await store.insert({ order_id: id, user_id: '42', merchant_id: '18446744073709551615', status: 'created', ...catalogueValues(4) })
      ids.push(id)
      users.set(id, { user: '42', merchant: '18446744073709551615' })
      await store.update('2', { status: 'paid' })
      await store.flush()
      expect(store.stats().secondaryFailures).toBeGreaterThanOrEqual(2)
    } finally {
      await inst.start()
    }
    await shardConn.end().catch(() => undefined)
    shardConn = await utcConnection(inst.url)
    // The pools' old connections died with the server: the drainer retries until it is through.
    let left = -1
    for (let attempt = 0; attempt < 5 && left !== 0; attempt++) left = (await drainJournal(rt)).remaining
    expect(left).toBe(0)
    await expectByteExact()
  })

  it.each(VALUE_COLUMNS.map((c) => [c]))('verify catches a one-bit change in %s, and repair puts it back', async (column: ValueColumn) => {
    const id = '3'
    const t = shardTable('user', users.get(id)!.user)
    const read = column === 'c_float' ? '(c_float + 0E0)' : column === 'c_geom' ? 'CAST(c_geom AS BINARY)' : quoteIdent(column)
    const [[row]] = await shardConn.query<RowDataPacket[]>(`SELECT ${read} AS v FROM ${t} WHERE order_id = ?`, [id])
    const flipped = oneBitAway(column, row!.v)
    await shardConn.query(`UPDATE ${t} SET ${quoteIdent(column)} = ? WHERE order_id = ?`, [flipped, id])
    const [[check]] = await shardConn.query<RowDataPacket[]>(`SELECT ${read} AS v FROM ${t} WHERE order_id = ?`, [id])
    expect(check!.v, 'the fault was applied').not.toEqual(row!.v)
    const v = await verify()
    expect(v.differences.map((d) => `${d.pair}:${d.kind}:${d.key}`)).toContain(`legacy-user:different:${id}`)
    const r = await runRepair(rt, v.differences, { execute: true, stage: stage.current() })
    expect(r.clean).toBe(true)
    expect((await verify()).clean).toBe(true)
    await expectByteExact()
  })
})
