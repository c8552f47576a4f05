/**
 * Provisioning across two real server processes: the shared local MariaDB
 * (h1) and a second `mariadbd` with its own data directory and port (h2),
 * half of each dimension's shards on each. Every shard table must exist on
 * its own server and on no other, a second run must have nothing to do, and
 * a routed write must land on the process the router names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { createMysqlPool, qualified } from '../../src/runtime/mysql.js'
import { routeSync, type Route } from '../../src/router/router.js'
import { encodeId, ID_EPOCH_MS } from '../../src/idgen/layout.js'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix } from '../support/db.js'
import { startMariadbInstance, type MariadbInstance } from '../support/mariadb-instance.js'

const prefix = testPrefix('prov2hosts')
let inst: MariadbInstance | undefined
let config: ShardkitConfig
let rt: Runtime | undefined
const direct: Record<'h1' | 'h2', Pool> = {} as never

beforeAll(async () => {
  inst = await startMariadbInstance()
  // 2 databases per host per dimension, round-robin: shards 0-29 and 60-89 on h1, 30-59 and 90-119 on h2
  config = testFleetConfig({ prefix, shardHosts: [testMysqlUrl(), inst.url], databasesPerHost: 2 })
  await createLegacyTable(config)
  rt = openRuntime(config)
  direct.h1 = adminPool()
  direct.h2 = createMysqlPool(inst.url, { connectionLimit: 2 })
})
afterAll(async () => {
  await rt?.close()
  await Promise.allSettled([direct.h1?.end(), direct.h2?.end()])
  await inst?.destroy()
  await dropPrefixedDatabases(prefix)
})

/** `database.table` of every shard-looking table under the prefix on one server. */
async function shardTablesOn(pool: Pool): Promise<Set<string>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE ? AND TABLE_NAME REGEXP '^orders_[0-9]{3}$'",
    [`${prefix.replaceAll('_', '\\_')}%`],
  )
  return new Set(rows.map((r) => `${r.db}.${r.t}`))
}

function expectedOn(host: 'h1' | 'h2'): Set<string> {
  const out = new Set<string>()
  for (const dim of ['user', 'merchant'] as const) for (const p of config.dimensions[dim].shards) if (p.host === host) out.add(`${p.database}.${p.table}`)
  return out
}

describe('provision across two server processes', () => {
  it('the config puts half of each dimension on each process', () => {
    for (const dim of ['user', 'merchant'] as const) {
      const onH2 = config.dimensions[dim].shards.filter((p) => p.host === 'h2').length
      expect(onH2).toBe(60)
    }
    expect(config.hosts.h2).toBe(inst!.url)
  })

  it('creates every shard table on its own process only, then has nothing to do', async () => {
    const first = await provision(rt!)
    expect(first.conflicts).toEqual([])
    const shardTables = first.created.filter((c) => c.kind === 'shard-table')
    expect(shardTables).toHaveLength(240)
    expect(shardTables.filter((c) => c.host === 'h2')).toHaveLength(120)

    const onH1 = await shardTablesOn(direct.h1)
    const onH2 = await shardTablesOn(direct.h2)
    expect(onH1.size).toBe(120)
    expect(onH2.size).toBe(120)
    expect(onH1).toEqual(expectedOn('h1'))
    expect(onH2).toEqual(expectedOn('h2'))

    const second = await provision(rt!)
    expect(second.created).toEqual([])
    expect(second.conflicts).toEqual([])
    expect(second.existing['shard-table']).toBe(240)
  })

  it('a routed write for a user, a merchant and a new order id lands on the process the router names', async () => {
    const routes: Array<[string, Route]> = [
      ['user 12345', routeSync(config, { userId: '12345' })], // shard 105 -> h2
      ['user 7', routeSync(config, { userId: 7 })], // shard 7 -> h1
      ['merchant 40', routeSync(config, { merchantId: '40' })], // shard 40 -> h2
      ['merchant 100000061', routeSync(config, { merchantId: '100000061' })], // shard 101 -> h2
      ['merchant 65', routeSync(config, { merchantId: '65' })], // shard 65 -> h1
      ['order with shard field 33', routeSync(config, { orderId: encodeId({ time: Date.UTC(2026, 0, 1) - ID_EPOCH_MS, worker: 3, sequence: 1, shard: 33 }) })],
    ]
    expect(routes.map(([, r]) => `${r.dimension}:${r.logicalShard}:${r.host}`)).toEqual([
      'user:105:h2',
      'user:7:h1',
      'merchant:40:h2',
      'merchant:101:h2',
      'merchant:65:h1',
      'user:33:h2',
    ])
    let orderId = 9_000_000_000
    for (const [label, r] of routes) {
      const id = String(++orderId)
      await rt!
        .host(r.host)
        .query(
          `INSERT INTO ${qualified(r.database, r.table)} (order_id, user_id, merchant_id, status, total_cents, items, created_at, updated_at) VALUES (?, 1, 1, 'new', 1, '[]', NOW(3), NOW(3))`,
          [id],
        )
      const other = r.host === 'h1' ? 'h2' : 'h1'
      const [here] = await direct[r.host as 'h1' | 'h2'].query<RowDataPacket[]>(`SELECT order_id FROM ${qualified(r.database, r.table)} WHERE order_id = ?`, [id])
      expect(here.map((x) => x.order_id), label).toEqual([id])
      // the other process does not even have that table
      const [there] = await direct[other].query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [r.database, r.table])
      expect(Number(there[0]!.n), label).toBe(0)
    }
  })
})
