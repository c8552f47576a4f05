import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'
import { encodeId } from '../../src/idgen/layout.js'
import { assertIdMatchesUser, legacyLocation, locationKey, primaryDatabases, reconcilePlan, routeOrderId, shardLocation } from '../../src/dualwrite/placement.js'

const config = parseConfig(
  buildConfig({ legacyUrl: 'mysql://root@db0:3306', legacyDatabase: 'shop', legacyTable: 'orders', idCeiling: '1000000', shardHosts: ['mysql://root@db1:3306', 'mysql://root@db2:3306'], databasesPerHost: 2 }),
  {},
)

describe('dual-write placement', () => {
  it('routes a new id by its shard field and a legacy id to the lookup', () => {
    const id = encodeId({ time: 123456, worker: 3, sequence: 9, shard: 77 })
    expect(routeOrderId(config, id)).toEqual({ kind: 'new', shard: 77 })
    expect(routeOrderId(config, '1000000')).toEqual({ kind: 'legacy' })
    expect(routeOrderId(config, '42')).toEqual({ kind: 'legacy' })
  })

  it('refuses an id above the ceiling whose shard field is 120..127', () => {
    // low 7 bits = 125
    expect(() => routeOrderId(config, String(1n << 40n | 125n))).toThrow(/shard field is 125/)
    expect(() => routeOrderId(config, '007')).toThrow(/leading zero/)
  })

  it('checks that a new id carries the shard of its user', () => {
    const id = encodeId({ time: 1, worker: 0, sequence: 0, shard: 5 })
    expect(() => assertIdMatchesUser(config, id, '125')).not.toThrow() // 125 mod 120 = 5
    expect(() => assertIdMatchesUser(config, id, '6')).toThrow(/carries user shard 5 but its user is in shard 6/)
    expect(() => assertIdMatchesUser(config, '99', '6')).not.toThrow() // legacy ids carry no shard
  })

  it('places keys by key mod 120', () => {
    expect(shardLocation(config, 'user', '121')).toEqual({ side: 'user', host: 'h1', database: 'sk_user_0', table: 'orders_001' })
    expect(shardLocation(config, 'merchant', '119').table).toBe('orders_119')
    expect(legacyLocation(config)).toEqual({ side: 'legacy', host: 'legacy', database: 'shop', table: 'orders' })
  })

  it('lists every primary database once: legacy, then the user databases', () => {
    expect(primaryDatabases(config).map((p) => p.name)).toEqual(['legacy', 'h1/sk_user_0', 'h2/sk_user_1', 'h1/sk_user_2', 'h2/sk_user_3'])
  })

  it('reconciles a merchant move: upsert at the new merchant shard, delete at the old', () => {
    const plan = reconcilePlan(config, 'merchant', { userId: '1', merchantId: '10' }, [
      { userId: '1', merchantId: '10' },
      { userId: '1', merchantId: '11' },
    ])
    expect(plan.map((p) => [p.location.table, p.action])).toEqual([
      ['orders_010', 'upsert'],
      ['orders_011', 'delete'],
    ])
  })

  it('deletes everywhere the journal points when the primary has no row', () => {
    const plan = reconcilePlan(config, 'user', undefined, [{ userId: '3', merchantId: '4' }])
    expect(plan).toEqual([{ location: shardLocation(config, 'user', '3'), action: 'delete' }])
    expect(reconcilePlan(config, 'legacy', undefined, [{ userId: '3', merchantId: '4' }])).toEqual([{ location: legacyLocation(config), action: 'delete' }])
  })

  it('never deletes where the current row belongs, even when two keys share a shard', () => {
    const plan = reconcilePlan(config, 'merchant', { userId: '1', merchantId: '250' }, [{ userId: '1', merchantId: '10' }])
    expect(plan).toHaveLength(1)
    expect(plan[0]!.action).toBe('upsert')
    expect(locationKey(plan[0]!.location)).toBe(locationKey(shardLocation(config, 'merchant', '10')))
  })
})
