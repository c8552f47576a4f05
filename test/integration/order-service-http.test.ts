/**
 * The order service over HTTP (fastify inject) on the real dual-write store:
 * create, read back, list pages, the lifecycle, optimistic versions, unicode
 * stored verbatim, at legacy, dual-write and shards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../examples/order-service/app.js'
import { DualWriteStore, openRuntime, provision, qualified, type Runtime } from '../../src/index.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { FixedStage, hostPools, newOrderId, physicalRow } from './dualwrite-support.js'
import { legacyLocation, shardLocation } from '../../src/dualwrite/placement.js'

const prefix = testPrefix('ordersvc')
const config = testFleetConfig({ prefix })
const pools = hostPools(config)
let rt: Runtime
let stage: FixedStage
let app: FastifyInstance

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  stage = new FixedStage(config, pools.get)
  await stage.set('legacy')
  const store = new DualWriteStore({ runtime: rt, stage })
  app = await buildApp({ store, stage, ids: { next: (u) => newOrderId(u) } })
})
afterAll(async () => {
  await app?.close()
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

type Order = { order_id: string; user_id: string; merchant_id: string; status: string; version: number; total_cents: number; note: string | null; items: unknown; created_at: string }

async function create(over: Record<string, unknown> = {}): Promise<Order> {
  const res = await app.inject({ method: 'POST', url: '/orders', payload: { user_id: '4242', merchant_id: '77', total_cents: 1250, items: [{ sku: 'TEA', name: 'jasmine', qty: 2, price_cents: 625 }], ...over } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json() as Order
}

const setStatus = (id: string, status: string, version?: number) => app.inject({ method: 'POST', url: `/orders/${id}/status`, payload: { status, ...(version !== undefined ? { version } : {}) } })

describe('order service on the dual-write store', () => {
  it('creates an order whose id carries the user shard and reads it back with ids as strings', async () => {
    const o = await create({ address: '北京市朝阳区 1号', phone: '+86 138 0000 0000', note: 'ring twice 🛎️' })
    expect(typeof o.order_id).toBe('string')
    expect(o).toMatchObject({ user_id: '4242', merchant_id: '77', status: 'created', version: 1, total_cents: 1250, note: 'ring twice 🛎️' })
    const res = await app.inject({ method: 'GET', url: `/orders/${o.order_id}` })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain(`"order_id":"${o.order_id}"`)
    expect(res.json()).toMatchObject({ address: '北京市朝阳区 1号', note: 'ring twice 🛎️', items: [{ sku: 'TEA', name: 'jasmine', qty: 2, price_cents: 625 }] })
    const raw = await physicalRow(pools.get('legacy'), legacyLocation(config), o.order_id)
    expect(raw?.note).toBe('ring twice 🛎️')
  })

  it('404 for an order that does not exist', async () => {
    expect((await app.inject({ method: 'GET', url: '/orders/123456789012' })).statusCode).toBe(404)
  })

  it('walks the lifecycle; an illegal change is 409 and changes nothing', async () => {
    const o = await create()
    for (const [s, v] of [['paid', 2], ['accepted', 3]] as const) {
      const res = await setStatus(o.order_id, s)
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ status: s, version: v })
    }
    const bad = await setStatus(o.order_id, 'completed')
    expect(bad.statusCode).toBe(409)
    expect(bad.json().error).toBe('ILLEGAL_TRANSITION')
    const after = (await app.inject({ method: 'GET', url: `/orders/${o.order_id}` })).json() as Order
    expect(after).toMatchObject({ status: 'accepted', version: 3 })
    expect((await setStatus(o.order_id, 'delivering', 2)).statusCode).toBe(409)
    expect((await setStatus(o.order_id, 'delivering', 3)).json()).toMatchObject({ status: 'delivering', version: 4 })
    expect((await setStatus(o.order_id, 'cancelled')).statusCode).toBe(409)
  })

  it('lists by user and by merchant, newest first, across cursor pages', async () => {
    const made: string[] = []
    for (let i = 0; i < 5; i++) made.push((await create({ user_id: '900001', merchant_id: '880001' })).order_id)
    for (const url of ['/users/900001/orders', '/merchants/880001/orders']) {
      const seen: string[] = []
      let cursor: string | undefined
      do {
        const res = await app.inject({ method: 'GET', url: `${url}?limit=2${cursor ? `&cursor=${cursor}` : ''}` })
        expect(res.statusCode).toBe(200)
        const page = res.json() as { orders: Order[]; next_cursor?: string }
        expect(page.orders.length).toBeLessThanOrEqual(2)
        seen.push(...page.orders.map((o) => o.order_id))
        cursor = page.next_cursor
      } while (cursor)
      expect(seen).toEqual([...made].reverse())
    }
  })

  it('writes the shard copies at dual-write and serves from the user shard at shards', async () => {
    await stage.set('dual-write')
    const o = await create({ user_id: '31337', merchant_id: '4040', note: 'ünïcödé' })
    const u = await physicalRow(pools.get(shardLocation(config, 'user', '31337').host), shardLocation(config, 'user', '31337'), o.order_id)
    const m = await physicalRow(pools.get(shardLocation(config, 'merchant', '4040').host), shardLocation(config, 'merchant', '4040'), o.order_id)
    expect(u?.note).toBe('ünïcödé')
    expect(m?.note).toBe('ünïcödé')
    await stage.set('write-shards')
    await stage.set('shards')
    const o2 = await create({ user_id: '31337', merchant_id: '4040' })
    expect((await setStatus(o2.order_id, 'paid')).statusCode).toBe(200)
    expect(await physicalRow(pools.get('legacy'), legacyLocation(config), o2.order_id)).toBeUndefined()
    const list = (await app.inject({ method: 'GET', url: '/users/31337/orders' })).json() as { orders: Order[] }
    expect(list.orders.map((x) => x.order_id)).toEqual([o2.order_id, o.order_id])
    expect(list.orders[0]?.status).toBe('paid')
    await stage.set('legacy')
  })
})

describe('graceful shutdown', () => {
  it('finishes a request in flight before close() resolves, then refuses new connections', async () => {
    const o = await create()
    const own = await buildApp({ store: new DualWriteStore({ runtime: rt, stage }), stage, ids: { next: (u) => newOrderId(u) } })
    const url = await own.listen({ port: 0, host: '127.0.0.1' })
    // Hold the order's row lock so the status change waits inside the store.
    const conn = await pools.get('legacy').getConnection()
    await conn.beginTransaction()
    await conn.query(`SELECT * FROM ${qualified(config.legacy.database, config.legacy.table)} WHERE order_id = ? FOR UPDATE`, [o.order_id])
    const inFlight = fetch(`${url}/orders/${o.order_id}/status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'paid' }) })
    await new Promise((r) => setTimeout(r, 200))
    let closed = false
    const closing = own.close().then(() => (closed = true))
    await new Promise((r) => setTimeout(r, 100))
    expect(closed).toBe(false)
    await conn.commit()
    conn.release()
    const res = await inFlight
    expect(res.status).toBe(200)
    expect(((await res.json()) as Order).status).toBe('paid')
    await closing
    expect(closed).toBe(true)
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
  })
})

