/**
 * Bad input over HTTP, on the real order service and the real dual-write
 * store at `dual-write` (legacy and both shard dimensions written): bodies
 * over the limit (413), wrongly typed fields, ids as JSON numbers above 2^53
 * (sent as raw bytes, so no client rounding hides the precision loss),
 * negative and fractional money. Each is refused with 400 naming the field
 * and every table is unchanged. SQL fragments and unicode (emoji, RTL, NUL,
 * 4-byte characters) in every text field are stored verbatim and read back
 * byte-equal from legacy and from both dimensions, never executed.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../examples/order-service/app.js'
import { DEFAULT_BODY_LIMIT } from '../../examples/order-service/schemas.js'
import { DualWriteStore, openRuntime, provision, qualified, type Runtime } from '../../src/index.js'
import { legacyLocation, shardLocation } from '../../src/dualwrite/placement.js'
import { FixedStage, hostPools, newOrderId, physicalRow } from '../integration/dualwrite-support.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'

const prefix = testPrefix('badhttp')
const config = testFleetConfig({ prefix })
const pools = hostPools(config)
let rt: Runtime
let app: FastifyInstance

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  const stage = new FixedStage(config, pools.get, rt)
  await stage.set('dual-write')
  const store = new DualWriteStore({ runtime: rt, stage })
  app = await buildApp({ store, stage, ids: { next: (u) => newOrderId(u) } })
})
afterAll(async () => {
  await app?.close()
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

/** A digest of every order table the service writes: legacy and all 240 shard tables (rows + CHECKSUM). */
async function snapshot(): Promise<string> {
  const h = createHash('sha256')
  const tables: Array<[Pool, string, string]> = [[pools.get(legacyLocation(config).host), config.legacy.database, config.legacy.table]]
  for (const dim of ['user', 'merchant'] as const) for (const p of config.dimensions[dim].shards) tables.push([pools.get(p.host), p.database, p.table])
  for (const [pool, db, table] of tables) {
    const [rows] = await pool.query<RowDataPacket[]>(`CHECKSUM TABLE ${qualified(db, table)}`)
    const [n] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(db, table)}`)
    h.update(`${db}.${table}:${String(rows[0]!.Checksum)}:${String(n[0]!.n)}\n`)
  }
  return h.digest('hex')
}

const good = { user_id: '4242', merchant_id: '77', total_cents: 1250, items: [{ sku: 'TEA', name: 'jasmine', qty: 2, price_cents: 625 }] }
const post = (payload: string, url = '/orders') => app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } })

/** [case, raw JSON body, field the error must name] */
const refused: Array<[string, string, string]> = [
  ['user_id as a JSON number above 2^53', `{"user_id": 9007199254740993, "merchant_id": "77", "total_cents": 1, "items": [{"sku": "A", "qty": 1, "price_cents": 1}]}`, 'user_id'],
  ['merchant_id as a JSON number above 2^53', `{"user_id": "1", "merchant_id": 9007199254740993, "total_cents": 1, "items": [{"sku": "A", "qty": 1, "price_cents": 1}]}`, 'merchant_id'],
  ['user_id as a small JSON number', JSON.stringify({ ...good, user_id: 42 }), 'user_id'],
  ['user_id above 2^63-1', JSON.stringify({ ...good, user_id: '9223372036854775808' }), 'user_id'],
  ['user_id negative', JSON.stringify({ ...good, user_id: '-1' }), 'user_id'],
  ['user_id with a leading zero', JSON.stringify({ ...good, user_id: '042' }), 'user_id'],
  ['user_id in exponent form', JSON.stringify({ ...good, user_id: '1e3' }), 'user_id'],
  ['total_cents above 2^53 (rounds on parse)', `{"user_id": "1", "merchant_id": "77", "total_cents": 9007199254740993, "items": [{"sku": "A", "qty": 1, "price_cents": 1}]}`, 'total_cents'],
  ['price_cents above 2^53 (rounds on parse)', `{"user_id": "1", "merchant_id": "77", "total_cents": 1, "items": [{"sku": "A", "qty": 1, "price_cents": 9007199254740993}]}`, 'price_cents'],
  ['total_cents negative', JSON.stringify({ ...good, total_cents: -1 }), 'total_cents'],
  ['total_cents fractional', JSON.stringify({ ...good, total_cents: 12.5 }), 'total_cents'],
  ['total_cents as a string', JSON.stringify({ ...good, total_cents: '1250' }), 'total_cents'],
  ['total_cents NaN-like', '{"user_id": "1", "merchant_id": "77", "total_cents": NaN, "items": []}', 'body'],
  ['price_cents negative', JSON.stringify({ ...good, items: [{ sku: 'A', qty: 1, price_cents: -5 }] }), 'price_cents'],
  ['price_cents fractional', JSON.stringify({ ...good, items: [{ sku: 'A', qty: 1, price_cents: 0.01 }] }), 'price_cents'],
  ['qty zero', JSON.stringify({ ...good, items: [{ sku: 'A', qty: 0, price_cents: 5 }] }), 'qty'],
  ['qty fractional', JSON.stringify({ ...good, items: [{ sku: 'A', qty: 1.5, price_cents: 5 }] }), 'qty'],
  ['items not an array', JSON.stringify({ ...good, items: { sku: 'A' } }), 'items'],
  ['items empty', JSON.stringify({ ...good, items: [] }), 'items'],
  ['note as a number', JSON.stringify({ ...good, note: 5 }), 'note'],
  ['address as an object', JSON.stringify({ ...good, address: { street: 'x' } }), 'address'],
  ['phone as an array', JSON.stringify({ ...good, phone: ['1'] }), 'phone'],
  ['sku empty', JSON.stringify({ ...good, items: [{ sku: '', qty: 1, price_cents: 5 }] }), 'sku'],
  ['currency lower case', JSON.stringify({ ...good, currency: 'usd' }), 'currency'],
  ['an unknown field', JSON.stringify({ ...good, status: 'delivered' }), 'status'],
  ['a forged order_id', JSON.stringify({ ...good, order_id: '1' }), 'order_id'],
  ['note over the column width', JSON.stringify({ ...good, note: 'x'.repeat(256) }), 'note'],
  ['user_id missing', JSON.stringify({ merchant_id: '77', total_cents: 1, items: good.items }), 'user_id'],
  ['a JSON array body', '[1,2,3]', 'body'],
  ['truncated JSON', '{"user_id": "1", ', 'body'],
]

describe('bad input over HTTP writes nothing', () => {
  let before: string
  beforeAll(async () => {
    // One real order first, so "unchanged" compares non-empty tables.
    const res = await post(JSON.stringify(good))
    expect(res.statusCode, res.body).toBe(201)
    before = await snapshot()
  })

  it.each(refused)('%s: 400 naming the field', async (_name, body, field) => {
    const res = await post(body)
    expect(res.statusCode, res.body).toBe(400)
    const b = res.json() as { error: string; message: string; field?: string }
    if (field !== 'body') {
      expect(b.error).toBe('VALIDATION')
      expect(b.message).toContain(field)
    } else expect(b.message.length).toBeGreaterThan(0)
  })

  it(`a body over the ${DEFAULT_BODY_LIMIT}-byte limit is 413`, async () => {
    const big = JSON.stringify({ ...good, note: 'x'.repeat(DEFAULT_BODY_LIMIT + 10) })
    const res = await post(big)
    expect(res.statusCode, res.body).toBe(413)
    expect(res.body).toMatch(/too large|FST_ERR_CTP_BODY_TOO_LARGE/i)
  })

  it('a status change with a wrongly typed version, unknown status or numeric id is 400', async () => {
    const cases: Array<[string, string, string]> = [
      ['/orders/1/status', JSON.stringify({ status: 'paid', version: '1' }), 'version'],
      ['/orders/1/status', JSON.stringify({ status: 'paid', version: 1.5 }), 'version'],
      ['/orders/1/status', JSON.stringify({ status: "paid'; DROP TABLE orders; --" }), 'status'],
      ['/orders/1e3/status', JSON.stringify({ status: 'paid' }), 'orderId'],
      ['/orders/9223372036854775808/status', JSON.stringify({ status: 'paid' }), 'orderId'],
    ]
    for (const [url, body, field] of cases) {
      const res = await post(body, url)
      expect(res.statusCode, `${url} ${body}: ${res.body}`).toBe(400)
      expect(res.body).toContain(field)
    }
  })

  it('every table is unchanged after all of the above', async () => {
    expect(await snapshot()).toBe(before)
  })
})

const SQL = ["'; DROP TABLE orders; --", '" OR 1=1 -- ', "\\'); DELETE FROM orders WHERE (1=1", '`order_id`; SHOW DATABASES', '/*!50000 UNION SELECT */ 1']
const UNICODE = ['📦🚚 deliver 🛎️', 'עברית مرحبا \u202Eevil\u202C', 'nul\u0000byte', '𝕏𠜎𠜱 4-byte 🏳️‍🌈', 'tab\tnew\nline\r\\back', 'ﬀ e\u0301 Å']

describe('SQL fragments and unicode in every text field', () => {
  const texts = [...SQL, ...UNICODE]
  it.each(texts.map((t) => [JSON.stringify(t), t]))('%s is stored verbatim in legacy and both dimensions, or refused', async (_label, text) => {
    const body = { ...good, user_id: '5151', merchant_id: '88', address: text, phone: text.slice(0, 32), note: text, items: [{ sku: text.slice(0, 64), name: text, qty: 1, price_cents: 1250, options: [text.slice(0, 64)] }] }
    const res = await post(JSON.stringify(body))
    if (res.statusCode === 400) {
      // Refusal is allowed only with the field named and nothing written.
      expect(res.json()).toMatchObject({ error: 'VALIDATION' })
      return
    }
    expect(res.statusCode, res.body).toBe(201)
    const created = res.json() as { order_id: string }
    const read = await app.inject({ method: 'GET', url: `/orders/${created.order_id}` })
    expect(read.statusCode).toBe(200)
    expect(read.json()).toMatchObject({ address: text, phone: text.slice(0, 32), note: text, items: [{ sku: text.slice(0, 64), name: text, options: [text.slice(0, 64)] }] })
    for (const loc of [legacyLocation(config), shardLocation(config, 'user', '5151'), shardLocation(config, 'merchant', '88')]) {
      const row = await physicalRow(pools.get(loc.host), loc, created.order_id)
      expect(row, `${loc.database}`).toBeDefined()
      expect(Buffer.from(String(row!.note), 'utf8').equals(Buffer.from(text, 'utf8'))).toBe(true)
      expect(String(row!.address)).toBe(text)
      expect(String(row!.phone)).toBe(text.slice(0, 32))
      expect(JSON.parse(String(row!.items))).toEqual([{ sku: text.slice(0, 64), name: text, qty: 1, price_cents: 1250, options: [text.slice(0, 64)] }])
    }
  })

  it('the legacy table and the shard tables still exist with all their rows (nothing executed)', async () => {
    const [l] = await pools.get(legacyLocation(config).host).query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(config.legacy.database, config.legacy.table)}`)
    expect(Number(l[0]!.n)).toBeGreaterThanOrEqual(1 + texts.length)
    const [dbs] = await pools.get(legacyLocation(config).host).query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
    expect(Number(dbs[0]!.n)).toBeGreaterThan(240)
  })
})
