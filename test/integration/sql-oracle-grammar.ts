/**
 * A small random grammar of statements on the orders table for the property
 * test of issue 18: predicates on user_id / merchant_id / order_id and other
 * columns combined with AND, OR, NOT and IN; self-joins tied or not by the
 * user; aggregates with and without GROUP BY; ORDER BY on unique columns
 * (so an order is one order); LIMIT and OFFSET; UPDATE and DELETE; UNION ALL;
 * INSERT of one or several rows with fresh order ids (made as the id
 * generator makes them, so each id's shard field is its user's shard).
 */
import fc from 'fast-check'
import { encodeId } from '../../src/idgen/layout.js'
import { shardOfKey } from '../../src/router/shard-function.js'

/** Values the grammar draws from (rows exist for most; some match nothing). */
export interface GrammarValues {
  readonly users: readonly number[]
  readonly merchants: readonly number[]
  readonly orderIds: readonly string[]
}

const STATUSES = ['new', 'paid', 'shipped', 'cancelled', 'draft']

function predicate(v: GrammarValues, q: string): fc.Arbitrary<string> {
  const user = fc.constantFrom(...v.users, 1000)
  const merchant = fc.constantFrom(...v.merchants, 999)
  const list = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<string> => fc.array(a, { minLength: 1, maxLength: 4 }).map((xs) => xs.join(', '))
  const atom = fc.oneof(
    user.map((u) => `${q}user_id = ${u}`),
    list(user).map((l) => `${q}user_id IN (${l})`),
    merchant.map((m) => `${q}merchant_id = ${m}`),
    list(merchant).map((l) => `${q}merchant_id IN (${l})`),
    fc.constantFrom(...v.orderIds).map((id) => `${q}order_id = ${id}`),
    list(fc.constantFrom(...v.orderIds)).map((l) => `${q}order_id IN (${l})`),
    fc.constantFrom(...STATUSES).map((s) => `${q}status = '${s}'`),
    fc.integer({ min: 0, max: 100_000 }).map((n) => `${q}total_cents > ${n}`),
    fc.constant(`${q}note IS NULL`),
    fc.integer({ min: 0, max: 200 }).map((n) => `${q}user_id > ${n}`),
  )
  const { pred } = fc.letrec<{ pred: string }>((tie) => ({
    pred: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      fc.tuple(tie('pred'), tie('pred')).map(([a, b]) => `${a} AND ${b}`),
      fc.tuple(tie('pred'), tie('pred')).map(([a, b]) => `(${a} OR ${b})`),
      tie('pred').map((a) => `NOT (${a})`),
    ),
  }))
  return pred
}

const order = fc.tuple(fc.constantFrom('created_at', 'order_id', 'total_cents'), fc.constantFrom('', ' DESC')).map(([c, d]) => `${c}${d}`)
const limit = fc.option(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined })), { nil: undefined })
  .map((l) => (l === undefined ? '' : ` LIMIT ${l[0]}${l[1] === undefined ? '' : ` OFFSET ${l[1]}`}`))

/** Random statements of the grammar. */
export function statementArbitrary(v: GrammarValues): fc.Arbitrary<string> {
  const where = predicate(v, '')
  const rows = fc.tuple(fc.constantFrom('*', 'order_id, user_id, status', 'order_id, created_at, total_cents'), where, fc.option(order, { nil: undefined }), limit)
    .map(([cols, w, o, l]) => `SELECT ${cols} FROM orders WHERE ${w}${o ? ` ORDER BY ${o}` : ''}${l}`)
  const aggregates = fc.tuple(fc.constantFrom('COUNT(*)', 'COUNT(*), SUM(total_cents)', 'MIN(created_at), MAX(total_cents)', 'AVG(total_cents)', 'COUNT(DISTINCT merchant_id)', 'SUM(total_cents) / COUNT(*)', 'STDDEV(total_cents)', 'BIT_OR(total_cents)'), where)
    .map(([cols, w]) => `SELECT ${cols} FROM orders WHERE ${w}`)
  const groups = fc.tuple(
    fc.constantFrom(
      ['status, COUNT(*) AS n, SUM(total_cents)', 'status', 'status'],
      ['status, COUNT(*) AS n', 'status', 'n DESC, status'],
      ['user_id, COUNT(*), AVG(total_cents)', 'user_id', 'user_id'],
      ['merchant_id, MAX(created_at)', 'merchant_id', 'merchant_id DESC'],
      ['COUNT(*)', 'status', ''],
    ),
    where,
    fc.boolean(),
    fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  ).map(([[cols, g, o], w, having, l]) => `SELECT ${cols} FROM orders WHERE ${w} GROUP BY ${g}${having ? ' HAVING COUNT(*) > 1' : ''}${o ? ` ORDER BY ${o}` : ''}${l && o ? ` LIMIT ${l}` : ''}`)
  const joins = fc.tuple(
    fc.constantFrom('a.user_id = b.user_id', 'a.user_id = b.user_id AND a.order_id <> b.order_id', 'a.merchant_id = b.merchant_id', 'a.user_id = b.user_id OR a.status = b.status', 'NOT (a.user_id = b.user_id)', 'b.user_id = a.user_id AND b.merchant_id = a.merchant_id'),
    fc.constantFrom('JOIN', 'LEFT JOIN'),
    predicate(v, 'a.'),
  ).map(([on, j, w]) => `SELECT a.order_id, b.order_id FROM orders a ${j} orders b ON ${on} WHERE ${w}`)
  const writes = fc.tuple(fc.constantFrom("UPDATE orders SET note = 'changed' WHERE", 'DELETE FROM orders WHERE'), where, fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }))
    .map(([head, w, l]) => `${head} ${w}${l ? ` LIMIT ${l}` : ''}`)
  const unions = fc.tuple(fc.constantFrom('order_id, user_id', 'order_id, status, total_cents'), where, where, fc.constantFrom('UNION ALL', 'UNION'))
    .map(([cols, a, b, op]) => `SELECT ${cols} FROM orders WHERE ${a} ${op} SELECT ${cols} FROM orders WHERE ${b}`)
  const insertRow = fc.tuple(fc.constantFrom(...v.users), fc.constantFrom(...v.merchants), fc.integer({ min: 1, max: 2 ** 20 }), fc.integer({ min: 1, max: 99_999 }))
    .map(([u, m, t, cents]) => `(${encodeId({ time: 40_000_000_000 + t, worker: 9, sequence: t % 128, shard: shardOfKey(u) })}, ${u}, ${m}, 'new', ${cents}, '[]', NOW(3), NOW(3))`)
  const inserts = fc.array(insertRow, { minLength: 1, maxLength: 3 })
    .map((rs) => `INSERT INTO orders (order_id, user_id, merchant_id, status, total_cents, items, created_at, updated_at) VALUES ${rs.join(', ')}`)
  return fc.oneof(rows, rows, aggregates, groups, joins, writes, unions, inserts)
}
