/**
 * HTTP input validation, field by field. The store here refuses to be called:
 * a request that fails validation must never reach it (no database needed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp, type OrderStore } from '../../examples/order-service/app.js'
import { isInt63 } from '../../examples/order-service/schemas.js'
import { ShardkitError } from '../../src/index.js'

const reached: string[] = []
const store: OrderStore = {
  insert: async () => void reached.push('insert'),
  update: async () => {
    reached.push('update')
    return {}
  },
  get: async () => {
    reached.push('get')
    return undefined
  },
  listByUser: async () => {
    reached.push('listByUser')
    return { rows: [] }
  },
  listByMerchant: async () => {
    reached.push('listByMerchant')
    throw new ShardkitError('USAGE', 'cursor is not one this store returned', { argument: 'cursor' })
  },
}

let app: FastifyInstance
beforeAll(async () => {
  app = await buildApp({ store, stage: { ready: true }, ids: { next: () => '1' }, bodyLimit: 4096 })
})
afterAll(async () => app.close())

const good = { user_id: '42', merchant_id: '7', total_cents: 1999, items: [{ sku: 'A1', qty: 1, price_cents: 1999 }] }

async function create(body: unknown) {
  reached.length = 0
  const res = await app.inject({ method: 'POST', url: '/orders', payload: body as object })
  return { status: res.statusCode, body: res.json() as { error: string; field?: string; message: string }, reached: [...reached] }
}

describe('isInt63', () => {
  it('accepts canonical decimals up to 2^63-1 only', () => {
    expect(isInt63('0')).toBe(true)
    expect(isInt63('9223372036854775807')).toBe(true)
    expect(isInt63('9223372036854775808')).toBe(false)
    expect(isInt63('99999999999999999999')).toBe(false)
    for (const bad of ['', '01', '-1', '+1', '1.0', '1e3', ' 1', '0x1', '１']) expect(isInt63(bad), bad).toBe(false)
  })
})

describe('POST /orders validation', () => {
  it('accepts a good body', async () => {
    const r = await create(good)
    expect(r.status).toBe(201)
    expect(r.reached).toEqual(['insert'])
  })

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['missing user_id', { user_id: undefined }, 'user_id'],
    ['user_id as a number', { user_id: 42 }, 'user_id'],
    ['user_id with a leading zero', { user_id: '042' }, 'user_id'],
    ['user_id above 2^63-1', { user_id: '9223372036854775808' }, 'user_id'],
    ['user_id negative', { user_id: '-1' }, 'user_id'],
    ['merchant_id as a number', { merchant_id: 7 }, 'merchant_id'],
    ['merchant_id missing', { merchant_id: undefined }, 'merchant_id'],
    ['total_cents fractional', { total_cents: 19.99 }, 'total_cents'],
    ['total_cents negative', { total_cents: -1 }, 'total_cents'],
    ['total_cents as a string', { total_cents: '1999' }, 'total_cents'],
    ['total_cents too large', { total_cents: 2 ** 60 }, 'total_cents'],
    ['currency lower case', { currency: 'cny' }, 'currency'],
    ['items empty', { items: [] }, 'items'],
    ['items not an array', { items: 'A1' }, 'items'],
    ['item qty zero', { items: [{ sku: 'A', qty: 0, price_cents: 1 }] }, 'items.0.qty'],
    ['item price negative', { items: [{ sku: 'A', qty: 1, price_cents: -5 }] }, 'items.0.price_cents'],
    ['item sku missing', { items: [{ qty: 1, price_cents: 1 }] }, 'items.0.sku'],
    ['item unknown field', { items: [{ sku: 'A', qty: 1, price_cents: 1, colour: 'red' }] }, 'items.0.colour'],
    ['address too long', { address: 'x'.repeat(256) }, 'address'],
    ['phone too long', { phone: '1'.repeat(33) }, 'phone'],
    ['note too long (in characters)', { note: '订'.repeat(256) }, 'note'],
    ['note a number', { note: 5 }, 'note'],
    ['unknown field', { status: 'paid' }, 'status'],
  ]
  for (const [name, patch, field] of cases) {
    it(`400 for ${name}, naming ${field}`, async () => {
      const r = await create({ ...good, ...patch })
      expect(r.status).toBe(400)
      expect(r.body.field).toBe(field)
      expect(r.body.message).toContain(field)
      expect(r.reached).toEqual([])
    })
  }

  it('accepts unicode up to the cap in characters, not bytes', async () => {
    const r = await create({ ...good, note: '😀'.repeat(255), address: '上海市徐汇区' })
    expect(r.status).toBe(201)
  })

  it('413 for a body over the limit and 400 for broken JSON', async () => {
    const big = await create({ ...good, note: 'x'.repeat(5000) })
    expect(big.status).toBe(413)
    expect(big.reached).toEqual([])
    const res = await app.inject({ method: 'POST', url: '/orders', payload: '{"user_id":', headers: { 'content-type': 'application/json' } })
    expect(res.statusCode).toBe(400)
  })
})

describe('other routes validation', () => {
  it('rejects bad ids in paths', async () => {
    for (const url of ['/orders/abc', '/orders/007', '/orders/9223372036854775808', '/users/x/orders', '/merchants/-3/orders']) {
      reached.length = 0
      const res = await app.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBe(400)
      expect(reached).toEqual([])
    }
  })

  it('rejects a bad status body, naming the field', async () => {
    for (const [payload, field] of [[{ status: 'shipped' }, 'status'], [{}, 'status'], [{ status: 'paid', version: '2' }, 'version'], [{ status: 'paid', extra: 1 }, 'extra']] as const) {
      reached.length = 0
      const res = await app.inject({ method: 'POST', url: '/orders/12/status', payload })
      expect(res.statusCode).toBe(400)
      expect(res.json().field).toBe(field)
      expect(reached).toEqual([])
    }
  })

  it('404 for an unknown order, both on read and on status change', async () => {
    expect((await app.inject({ method: 'GET', url: '/orders/12' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'PUT', url: '/orders/12/status', payload: { status: 'paid' } })).statusCode).toBe(404)
  })

  it('checks list limits and passes a bad cursor error through as 400 naming cursor', async () => {
    expect((await app.inject({ method: 'GET', url: '/users/5/orders?limit=0' })).json().field).toBe('limit')
    expect((await app.inject({ method: 'GET', url: '/users/5/orders?limit=500' })).json().field).toBe('limit')
    expect((await app.inject({ method: 'GET', url: '/users/5/orders?limit=10' })).statusCode).toBe(200)
    const res = await app.inject({ method: 'GET', url: '/merchants/5/orders?cursor=zzzz' })
    expect(res.statusCode).toBe(400)
    expect(res.json().field).toBe('cursor')
  })

  it('reports readiness from the stage source', async () => {
    const stage = { ready: false }
    const a = await buildApp({ store, stage, ids: { next: () => '1' } })
    expect((await a.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503)
    stage.ready = true
    expect((await a.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200)
    expect((await a.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    await a.close()
  })
})
