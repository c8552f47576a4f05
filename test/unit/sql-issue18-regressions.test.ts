/**
 * Regression tests for issue 18: each case the review found on main, named
 * after its defect. A statement wrongly called single-shard would be sent to
 * one shard and silently miss the other shards' rows; the reverse makes the
 * lint useless for the statements it should pass.
 */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'
import type { SqlLayout } from '../../src/sql/classify.js'
import { classifyStatement, SqlLinter } from '../../src/sql/linter.js'
import { planStatement } from '../../src/sql/planner.js'

const layout: SqlLayout = { database: 'legacydb', table: 'orders', userColumn: 'user_id', merchantColumn: 'merchant_id', primaryKey: 'order_id' }
const config = parseConfig(buildConfig({ legacyUrl: 'mysql://root@127.0.0.1:3306/', legacyDatabase: 'legacydb', legacyTable: 'orders', idCeiling: '1000000000', shardHosts: ['mysql://root@127.0.0.1:3306/'], databasesPerHost: 2, redisUrl: 'redis://127.0.0.1:6379' }), {})
const cls = (sql: string) => classifyStatement(sql, layout)

describe('issue 18 case 1: a self-join whose user equality is not a plain AND term is not single-shard', () => {
  const cases = [
    'SELECT a.order_id FROM orders a JOIN orders b ON a.user_id = b.user_id OR a.merchant_id = b.merchant_id WHERE a.user_id = 5',
    'SELECT a.order_id FROM orders a JOIN orders b ON NOT (a.user_id = b.user_id) WHERE a.user_id = 5',
    'SELECT a.order_id FROM orders a JOIN orders b ON a.user_id = b.user_id JOIN orders c ON c.merchant_id = a.merchant_id WHERE a.user_id = 5',
    // the third table's ON equates the first two, not itself
    'SELECT a.order_id FROM orders a JOIN orders b ON a.user_id = b.user_id JOIN orders c ON a.user_id = b.user_id WHERE a.user_id = 5',
    'SELECT a.order_id FROM orders a, orders b WHERE a.user_id = b.user_id OR a.merchant_id = b.merchant_id',
  ]
  it.each(cases)('%s', (sql) => {
    const v = cls(sql)
    expect(v.class).toBe('unsupported')
    expect(v.reasons).toContain('cross-shard-join')
    expect(planStatement(config, sql).targets.length).not.toBe(1)
  })

  it('a join tied by user but filtered by merchant is not one merchant shard: the partner rows sit on other merchant shards', () => {
    const sql = 'SELECT a.order_id FROM orders a JOIN orders b ON a.user_id = b.user_id WHERE a.merchant_id = 5'
    expect(cls(sql)).toMatchObject({ class: 'scatter', dimension: 'user' })
    expect(planStatement(config, sql).targets).toHaveLength(120)
  })

  it('a plain AND term still keeps a self-join on one shard', () => {
    expect(cls('SELECT a.order_id FROM orders a JOIN orders b ON a.user_id = b.user_id AND a.order_id <> b.order_id WHERE a.user_id = 3').class).toBe('user')
    expect(cls('SELECT a.order_id FROM orders a LEFT JOIN orders b ON b.user_id = a.user_id AND b.status = a.status WHERE a.user_id = 3').class).toBe('user')
    expect(cls('SELECT a.order_id FROM orders a JOIN orders b ON a.merchant_id = b.merchant_id WHERE a.merchant_id = 3').class).toBe('merchant')
  })
})

describe('issue 18 case 2: a digest verdict is the worst over its statements, with counts per class', () => {
  it('IN (5, 5) first does not make IN (1, 2, 3) single-shard', () => {
    const l = new SqlLinter(layout)
    for (const s of ['SELECT * FROM orders WHERE user_id IN (5, 5)', 'SELECT * FROM orders WHERE user_id IN (1, 2, 3)', 'SELECT * FROM orders WHERE user_id IN (7, 8, 9, 10)']) l.add(s)
    const r = l.report()
    expect(r.digests).toHaveLength(1)
    expect(r.digests[0]).toMatchObject({ class: 'multi', count: 3, shards: 4, classes: { user: 1, multi: 2 } })
    expect(r.summary).toEqual({ multi: { digests: 1, statements: 3 } })
  })

  it('user_id = 5 OR user_id = 5 first does not make user_id = 1 OR user_id = 2 single-shard', () => {
    const l = new SqlLinter(layout)
    l.add('SELECT * FROM orders WHERE user_id = 5 OR user_id = 5')
    l.add('SELECT * FROM orders WHERE user_id = 1 OR user_id = 2')
    expect(l.report().digests[0]).toMatchObject({ class: 'multi', count: 2, shards: 2, classes: { user: 1, multi: 1 } })
  })

  it('a single-shard statement after a worse one keeps the worse verdict and its example', () => {
    const l = new SqlLinter(layout)
    l.add('SELECT AVG(total_cents) FROM orders WHERE user_id IN (1, 2)')
    l.add('SELECT AVG(total_cents) FROM orders WHERE user_id IN (3, 3)')
    expect(l.report().digests[0]).toMatchObject({ class: 'unsupported', reasons: ['avg-across-shards'], example: 'SELECT AVG(total_cents) FROM orders WHERE user_id IN (1, 2)', classes: { unsupported: 1, user: 1 } })
  })
})

describe('issue 18 case 3: an upsert that moves the shard key is not single-shard', () => {
  const insert = "INSERT INTO orders (order_id, user_id, merchant_id, status, total_cents, items, created_at, updated_at) VALUES (1000000124, 5, 7, 'new', 10, '[]', NOW(3), NOW(3))"
  it.each([['user_id = 6', 'shard-key-update'], ['merchant_id = 9', 'shard-key-update'], ['order_id = 1000000999', 'order-id-update']])('ON DUPLICATE KEY UPDATE %s', (set, reason) => {
    const v = cls(`${insert} ON DUPLICATE KEY UPDATE ${set}`)
    expect(v.class).toBe('unsupported')
    expect(v.reasons).toContain(reason)
  })
  it('an upsert that leaves the keys alone stays single-shard', () => {
    expect(cls(`${insert} ON DUPLICATE KEY UPDATE status = VALUES(status)`).class).toBe('user')
  })
})

describe('issue 18 case 4: transactions', () => {
  const crossTx = (l: SqlLinter) => l.report().digests.filter((d) => d.reasons.includes('transaction-across-shard-keys') || d.reasons.includes('transaction-across-tables'))

  it('a transaction opened with SET autocommit=0 that updates users 1 and 2 is flagged', () => {
    const l = new SqlLinter(layout, { idCeiling: '1000' })
    for (const s of ['SET autocommit=0', "UPDATE orders SET status = 'a' WHERE user_id = 1", "UPDATE orders SET status = 'b' WHERE user_id = 2", 'COMMIT']) l.add(s, 's1')
    expect(crossTx(l)).toHaveLength(1)
    expect(crossTx(l)[0]).toMatchObject({ class: 'unsupported', count: 1, reasons: ['transaction-across-shard-keys'] })
  })

  it('autocommit=0 keeps opening transactions after COMMIT until SET autocommit=1', () => {
    const l = new SqlLinter(layout, { idCeiling: '1000' })
    const s = ["SET SESSION autocommit = 0", "UPDATE orders SET status = 'a' WHERE user_id = 1", 'COMMIT', "UPDATE orders SET status = 'a' WHERE user_id = 1", "UPDATE orders SET status = 'b' WHERE user_id = 3", 'COMMIT', 'SET autocommit = 1', "UPDATE orders SET status = 'a' WHERE user_id = 1", "UPDATE orders SET status = 'b' WHERE user_id = 4"]
    for (const x of s) l.add(x, 's1')
    l.endSession('s1')
    expect(crossTx(l).map((d) => d.count)).toEqual([1])
  })

  it('a transaction that writes orders and another table is flagged; one that stays on orders of one user is not', () => {
    const l = new SqlLinter(layout, { idCeiling: '1000' })
    for (const s of ['BEGIN', "UPDATE orders SET status = 'paid' WHERE user_id = 1 AND order_id = 5", 'UPDATE users SET balance = balance - 5 WHERE id = 1', 'COMMIT']) l.add(s, 's1')
    for (const s of ['BEGIN', "UPDATE orders SET status = 'paid' WHERE user_id = 1 AND order_id = 5", "UPDATE orders SET note = 'x' WHERE user_id = 1", 'COMMIT']) l.add(s, 's2')
    const flagged = crossTx(l)
    expect(flagged).toHaveLength(1)
    expect(flagged[0]!.reasons).toEqual(['transaction-across-tables'])
    expect(flagged[0]!.digest).toContain('update users')
  })
})

describe('issue 18 case 5: merge advice is exact or the statement says why not', () => {
  it.each([
    ['SELECT STDDEV(total_cents) FROM orders', 'aggregate-across-shards'],
    ['SELECT GROUP_CONCAT(status) FROM orders WHERE user_id IN (1, 2)', 'aggregate-across-shards'],
    ['SELECT VAR_POP(total_cents) FROM orders', 'aggregate-across-shards'],
    ['SELECT SUM(total_cents) / COUNT(*) FROM orders', 'aggregate-expression-across-shards'],
    ['SELECT MAX(total_cents) - MIN(total_cents) FROM orders WHERE merchant_id IN (3, 4)', 'aggregate-expression-across-shards'],
    ["UPDATE orders SET status = 'x' WHERE user_id IN (1, 2) LIMIT 1", 'write-limit-across-shards'],
    ['DELETE FROM orders WHERE user_id IN (1, 2) LIMIT 1', 'write-limit-across-shards'],
  ])('%s', (sql, reason) => {
    const v = cls(sql)
    expect(v.class).toBe('unsupported')
    expect(v.reasons).toContain(reason)
    expect(v.merge ?? '').not.toContain('concatenate rows')
  })

  it('mergeable aggregates still get their merge', () => {
    const v = cls('SELECT COUNT(*), SUM(total_cents), MIN(created_at), MAX(created_at) FROM orders')
    expect(v.class).toBe('scatter')
    expect(v.merge).toMatch(/sum COUNT\/SUM/)
  })
})

describe('issue 18 case 6: single-shard statements are not flagged as unsupported', () => {
  it.each([
    'SELECT a.order_id, b.order_id FROM orders a, orders b WHERE a.user_id = b.user_id AND a.user_id = 3',
    'UPDATE orders a JOIN orders b ON a.user_id = b.user_id AND a.order_id <> b.order_id SET a.note = b.note WHERE a.user_id = 3',
    "SELECT order_id FROM orders WHERE user_id = 5 UNION ALL SELECT order_id FROM orders WHERE user_id = 5 AND status = 'paid'",
    "INSERT INTO orders SET order_id = 1000000126, user_id = 42, merchant_id = 7, status = 'new', total_cents = 5, items = '[]', created_at = NOW(3), updated_at = NOW(3)",
  ])('%s', (sql) => {
    const v = cls(sql)
    expect({ class: v.class, reasons: v.reasons }).toEqual({ class: 'user', reasons: [] })
    expect(planStatement(config, sql).targets).toHaveLength(1)
  })
})

describe('issue 18, found while fixing: an order id above 2^53 still routes', () => {
  it('order_id = 7205759403792793601 is an order lookup, not a scatter', () => {
    expect(cls('SELECT * FROM orders WHERE order_id = 7205759403792793601')).toMatchObject({ class: 'order', keys: ['7205759403792793601'] })
  })
})

describe('issue 18, found by the oracle: node-sql-parser reads `a OR b AND c` as `(a OR b) AND c`', () => {
  it.each([
    ["SELECT * FROM orders WHERE status = 'paid' OR merchant_id = 9 AND user_id = 5", 'scatter'],
    ["UPDATE orders SET note = 'changed' WHERE merchant_id IN (3) OR merchant_id = 3 AND order_id = 55", 'unsupported'],
    ['SELECT * FROM orders WHERE user_id = 5 AND status = 1 OR user_id = 5', 'user'],
    ['SELECT * FROM orders WHERE (user_id = 5 OR user_id = 6) AND merchant_id = 3', 'merchant'],
  ])('%s is %s', (sql, expected) => {
    expect(cls(sql).class).toBe(expected)
  })

  it('XOR, || and && (which the parser misreads entirely) are not judged', () => {
    for (const op of ['XOR', '||', '&&']) expect(cls(`SELECT * FROM orders WHERE status = 'x' ${op} user_id = 5`)).toMatchObject({ class: 'unparsed', error: expect.stringContaining('wrong precedence') })
  })
})

describe('issue 18 case 2, the literal pattern behind per-statement verdicts', () => {
  const digestOfOne = (stmts: string[]) => {
    const l = new SqlLinter(layout)
    for (const s of stmts) l.add(s)
    return l.report().digests
  }

  it("5 and '5' are one value to routing; '1' and 2 are two", () => {
    const [d] = digestOfOne(["SELECT * FROM orders WHERE user_id IN ('5', 5)", "SELECT * FROM orders WHERE user_id IN ('1', 2)"])
    expect(d).toMatchObject({ count: 2, class: 'multi', classes: { user: 1, multi: 1 } })
  })

  it('a long list (a map, not pairwise compares) of one repeated user is one shard; with one other user it is two', () => {
    const same = Array(14).fill('7').join(', ')
    const other = [...Array(13).fill('7'), '8'].join(', ')
    const [d] = digestOfOne([`SELECT * FROM orders WHERE user_id IN (${same})`, `SELECT * FROM orders WHERE user_id IN (${other})`])
    expect(d).toMatchObject({ count: 2, class: 'multi', shards: 2, classes: { user: 1, multi: 1 } })
  })

  it('NULL where a key goes is not a key: the digest counts both verdicts', () => {
    const [d] = digestOfOne(["UPDATE orders SET note = 'x' WHERE user_id = 5", "UPDATE orders SET note = 'x' WHERE user_id = NULL"])
    expect(d).toMatchObject({ count: 2, class: 'unsupported', reasons: ['write-without-shard-key'], classes: { user: 1, unsupported: 1 } })
  })

  it('two folded lists with the same total of items but other lengths are told apart', () => {
    const [d] = digestOfOne(['SELECT * FROM orders WHERE user_id IN (1, 1) AND merchant_id IN (2, 3, 4)', 'SELECT * FROM orders WHERE user_id IN (1, 2, 3) AND merchant_id IN (4, 4)'])
    expect(d).toMatchObject({ count: 2, classes: { user: 1, merchant: 1 } })
  })
})

describe('issue 18: UNION handling keeps counting the second branch of a UNION inside a subquery', () => {
  it('SELECT ... WHERE user_id = 5 AND order_id IN (SELECT 1 UNION SELECT order_id FROM orders WHERE merchant_id = 3) is not single-shard', () => {
    expect(cls('SELECT * FROM orders WHERE user_id = 5 AND order_id IN (SELECT 1 UNION SELECT order_id FROM orders WHERE merchant_id = 3)').class).toBe('unsupported')
  })
})
