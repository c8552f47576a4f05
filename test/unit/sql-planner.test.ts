/**
 * planStatement: shards, physical tables, per-shard SQL, merge step and the
 * side that serves a statement at each cutover stage.
 */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'
import { encodeId } from '../../src/idgen/layout.js'
import { bindParams, planStatement } from '../../src/sql/planner.js'

const config = parseConfig(buildConfig({ legacyUrl: 'mysql://root@127.0.0.1:3306/', legacyDatabase: 'shop', legacyTable: 'orders', idCeiling: '1000000000', shardHosts: ['mysql://root@127.0.0.1:3306/'], databasesPerHost: 2, redisUrl: 'redis://127.0.0.1:6379' }), {})

describe('planStatement', () => {
  it('a query by user names exactly one shard and its physical table', () => {
    const p = planStatement(config, 'SELECT * FROM orders WHERE user_id = ? ORDER BY created_at DESC LIMIT 5', ['12345'])
    expect(p).toMatchObject({ class: 'user', dimension: 'user', shards: [105], lookup: false, servedBy: 'shards', stage: 'shards' })
    expect(p.targets).toHaveLength(1)
    const place = config.dimensions.user.shards[105]!
    expect(p.targets[0]).toMatchObject({ shard: 105, host: place.host, database: place.database, table: place.table })
    expect(p.targets[0]!.sql).toContain(`\`${place.database}\`.\`${place.table}\``)
    expect(p.targets[0]!.sql).toContain('?')
  })

  it('a new order id routes by its shard field; a legacy id needs the lookup', () => {
    const id = encodeId({ time: 31_536_000_000, worker: 3, sequence: 1, shard: 77 })
    expect(planStatement(config, 'SELECT * FROM orders WHERE order_id = ?', [id])).toMatchObject({ class: 'order', shards: [77] })
    const legacy = planStatement(config, 'SELECT * FROM orders WHERE order_id = 123')
    expect(legacy).toMatchObject({ class: 'order', shards: null, lookup: true, targets: [] })
  })

  it('a scatter read pushes OFFSET + LIMIT down to every shard and says how to merge', () => {
    const p = planStatement(config, "SELECT * FROM shop.orders WHERE status = 'new' ORDER BY created_at LIMIT 10 OFFSET 90")
    expect(p.class).toBe('scatter')
    expect(p.shards).toHaveLength(120)
    expect(p.targets).toHaveLength(120)
    expect(p.targets[0]!.sql).toMatch(/LIMIT 100$/)
    expect(p.merge).toContain('12000 rows')
    expect(p.reasons).toEqual(['deep-offset'])
  })

  it('a merchant read uses the merchant dimension; a user write targets its user shard and names the merchant copy', () => {
    expect(planStatement(config, 'SELECT * FROM orders WHERE merchant_id = 121').targets.map((t) => [t.dimension, t.shard])).toEqual([['merchant', 1]])
    const w = planStatement(config, "UPDATE orders SET status = 'x' WHERE user_id = 5")
    expect(w.targets.map((t) => [t.dimension, t.shard])).toEqual([['user', 5]])
    expect(w.servedNote).toContain('merchant copy')
  })

  it('says which side serves the statement at each stage', () => {
    const read = 'SELECT * FROM orders WHERE user_id = 1'
    const write = "UPDATE orders SET status = 'x' WHERE user_id = 1"
    expect(planStatement(config, read, [], { stage: 'shadow-read' }).servedBy).toBe('legacy')
    expect(planStatement(config, read, [], { stage: 'read-shards' }).servedBy).toBe('shards')
    expect(planStatement(config, write, [], { stage: 'read-shards' }).servedBy).toBe('legacy')
    expect(planStatement(config, write, [], { stage: 'write-shards' }).servedBy).toBe('shards')
    expect(() => planStatement(config, read, [], { stage: 'nope' as never })).toThrow(/--stage/)
  })

  it('binds ? outside strings only and refuses a count mismatch', () => {
    expect(bindParams("SELECT '?' FROM t WHERE a = ? AND b = ?", ['x', 5])).toBe("SELECT '?' FROM t WHERE a = 'x' AND b = 5")
    expect(bindParams('SELECT ?', ["it's"])).toBe("SELECT 'it''s'")
    expect(() => bindParams('SELECT ?', [])).toThrow(/--params/)
    expect(() => bindParams('SELECT 1', [1])).toThrow(/--params/)
  })

  it('an order id whose shard field is 120..127 (never generated) is a plan without targets, not an exception', () => {
    // 1000000127 is above the ceiling, so it is read as a new id; its low 7 bits are 127
    expect(planStatement(config, 'SELECT * FROM orders WHERE order_id = 1000000127')).toMatchObject({ class: 'order', shards: null, targets: [] })
  })

  it('an unparsable statement is a plan with the parser message, not an exception', () => {
    expect(planStatement(config, 'SELEC oops')).toMatchObject({ class: 'unparsed', targets: [] })
  })
})
