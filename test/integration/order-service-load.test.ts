/**
 * The load generator against the service on the real store: zero failed
 * requests while the stage moves under it (writes planned under an old stage
 * version are refused by the fence and retried inside the service), and
 * every acknowledged order exactly once per dimension, in its shard.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../examples/order-service/app.js'
import { runLoad } from '../../examples/load/generator.js'
import { checkExactlyOnce } from '../../examples/demo/exactly-once.js'
import { drainJournal, DualWriteStore, openRuntime, provision, qualified, type Runtime } from '../../src/index.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { FixedStage, hostPools, newOrderId } from './dualwrite-support.js'

const prefix = testPrefix('ordersload')
const config = testFleetConfig({ prefix })
const pools = hostPools(config)
let rt: Runtime
let stage: FixedStage
let app: FastifyInstance
let url: string

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  stage = new FixedStage(config, pools.get, rt)
  await stage.set('dual-write')
  app = await buildApp({ store: new DualWriteStore({ runtime: rt, stage }), stage, ids: { next: (u) => newOrderId(u) } })
  url = await app.listen({ port: 0, host: '127.0.0.1' })
})
afterAll(async () => {
  await app?.close()
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('load through the service while the stage moves', () => {
  it('fails no request and leaves every acknowledged order exactly once per dimension', async () => {
    const ids: string[] = []
    const ac = new AbortController()
    const running = runLoad({ urls: [url, url], rps: 60, durationS: 0, signal: ac.signal, users: 300, merchants: 40, onCreated: (id) => ids.push(id) })
    const moves: string[] = []
    for (const s of ['shadow-read', 'read-shards', 'write-shards', 'shards'] as const) {
      await new Promise((r) => setTimeout(r, 700))
      moves.push((await stage.set(s)).stage)
    }
    await new Promise((r) => setTimeout(r, 700))
    ac.abort()
    const report = await running
    expect(moves).toEqual(['shadow-read', 'read-shards', 'write-shards', 'shards'])
    expect(report.failures).toEqual([])
    expect(report.errors).toBe(0)
    expect(report.requests).toBeGreaterThan(100)
    expect(report.byOp.status.requests).toBeGreaterThan(0)
    expect(report.byOp['list-merchant'].requests).toBeGreaterThan(0)
    expect(ids.length).toBe(report.created)
    expect(ids.length).toBeGreaterThan(30)

    // What each instance's JournalDrainer does: copy any write whose secondary failed at a switch.
    const drained = await drainJournal(rt)
    expect(drained.remaining).toBe(0)
    const presence = await checkExactlyOnce(rt, ids)
    expect(presence.dimensions.flatMap((d) => [...d.missing, ...d.duplicated, ...d.misplaced])).toEqual([])
    expect(presence.ok).toBe(true)
    for (const d of presence.dimensions) expect(d).toMatchObject({ checked: ids.length, exactlyOnce: ids.length, missing: [], duplicated: [], misplaced: [] })
  })

  it('the exactly-once check can fail: a deleted copy and a duplicated copy are found', async () => {
    const ids: string[] = []
    await runLoad({ urls: [url], rps: 40, durationS: 0.5, users: 300, merchants: 40, mix: { create: 1, get: 0, 'list-user': 0, 'list-merchant': 0, status: 0 }, onCreated: (id) => ids.push(id) })
    expect(ids.length).toBeGreaterThan(3)
    const [gone, twice] = ids as [string, string]
    const shards = config.dimensions.user.shards
    const home = await Promise.all(shards.map(async (p) => ({ p, n: Number(((await pools.get(p.host).query(`SELECT COUNT(*) AS n FROM ${qualified(p.database, p.table)} WHERE order_id = ?`, [twice])) as [Array<{ n: number }>, unknown])[0][0]!.n) })))
    const at = home.find((h) => h.n === 1)!.p
    const other = shards.find((p) => p.shard !== at.shard)!
    await pools.get(other.host).query(`INSERT INTO ${qualified(other.database, other.table)} SELECT * FROM ${qualified(at.database, at.table)} WHERE order_id = ?`, [twice])
    for (const p of config.dimensions.merchant.shards) await pools.get(p.host).query(`DELETE FROM ${qualified(p.database, p.table)} WHERE order_id = ?`, [gone])
    const presence = await checkExactlyOnce(rt, ids)
    expect(presence.ok).toBe(false)
    const [user, merchant] = presence.dimensions
    expect(user).toMatchObject({ dimension: 'user', duplicated: [twice], exactlyOnce: ids.length - 1 })
    expect(user!.misplaced).toEqual([twice])
    expect(merchant).toMatchObject({ dimension: 'merchant', missing: [gone], exactlyOnce: ids.length - 1 })
  })
})
