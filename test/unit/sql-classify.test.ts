/**
 * The statement catalogue (test/fixtures/sql/catalogue.json): every class and
 * reason of issue 9, each statement with its expected class and reasons.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SQL_CLASSES, type SqlLayout } from '../../src/sql/classify.js'
import { digestOf, StatementSplitter } from '../../src/sql/digest.js'
import { classifyStatement, SqlLinter } from '../../src/sql/linter.js'
import { REASON_ADVICE, type Reason } from '../../src/sql/reasons.js'

interface Case { sql: string; class: string; reasons?: string[] }
const catalogue = JSON.parse(readFileSync(new URL('../fixtures/sql/catalogue.json', import.meta.url), 'utf8')) as Case[]
const layout: SqlLayout = { database: 'legacydb', table: 'orders', userColumn: 'user_id', merchantColumn: 'merchant_id', primaryKey: 'order_id' }

describe('catalogue', () => {
  it('has at least 60 statements and covers every class and every statement-level reason', () => {
    expect(catalogue.length).toBeGreaterThanOrEqual(60)
    expect(new Set(catalogue.map((c) => c.class))).toEqual(new Set(SQL_CLASSES))
    const covered = new Set(catalogue.flatMap((c) => c.reasons ?? []))
    // covered elsewhere: upsert (needs unique keys), transactions (need a session), several statements
    const elsewhere: Reason[] = ['upsert-on-unique-key', 'transaction-across-shard-keys', 'transaction-across-tables', 'several-statements']
    for (const r of Object.keys(REASON_ADVICE) as Reason[]) if (!elsewhere.includes(r)) expect(covered, r).toContain(r)
  })

  it.each(catalogue.map((c) => [c.sql, c] as const))('%s', (_sql, c) => {
    const v = classifyStatement(c.sql, layout)
    expect({ class: v.class, reasons: [...v.reasons].sort() }).toEqual({ class: c.class, reasons: [...(c.reasons ?? [])].sort() })
    expect(v.suggestion.length).toBeGreaterThan(10)
    if (v.class === 'unparsed') expect(v.error).toMatch(/expected/i)
  })
})

describe('reasons that need more than one statement', () => {
  it('REPLACE / ON DUPLICATE KEY with a unique key that lacks the user column is unsupported', () => {
    const withUnique: SqlLayout = { ...layout, uniqueKeys: [['merchant_id', 'note']] }
    const sql = "INSERT INTO orders (order_id, user_id, merchant_id) VALUES (1000000001, 1, 2) ON DUPLICATE KEY UPDATE note = 'x'"
    expect(classifyStatement(sql, withUnique)).toMatchObject({ class: 'unsupported', reasons: ['upsert-on-unique-key'] })
    expect(classifyStatement('REPLACE INTO orders (order_id, user_id) VALUES (1000000001, 1)', withUnique).reasons).toEqual(['upsert-on-unique-key'])
    expect(classifyStatement(sql, { ...layout, uniqueKeys: [['user_id', 'note']] }).class).toBe('user')
  })

  it('a transaction that reaches two user shards is unsupported; one user is fine', () => {
    const l = new SqlLinter(layout, { idCeiling: '1000' })
    for (const s of ['BEGIN', "UPDATE orders SET status = 'a' WHERE user_id = 1", "UPDATE orders SET status = 'b' WHERE user_id = 2", 'COMMIT']) l.add(s, 's1')
    for (const s of ['BEGIN', "UPDATE orders SET status = 'a' WHERE user_id = 1", "UPDATE orders SET status = 'b' WHERE user_id = 121", 'COMMIT']) l.add(s, 's2')
    const tx = l.report().digests.filter((d) => d.reasons.includes('transaction-across-shard-keys'))
    expect(tx).toHaveLength(1)
    expect(tx[0]).toMatchObject({ class: 'unsupported', count: 1 })
  })

  it('two statements in one string are not guessed at', () => {
    expect(classifyStatement('SELECT 1; SELECT 2', layout).class).toBe('unparsed')
  })
})

describe('digest', () => {
  it('replaces literals, folds lists, normalises case, whitespace and comments', () => {
    const a = digestOf("SELECT *  FROM Orders WHERE user_id IN (1, 2, 3) AND note = 'it''s; -- not a comment' /* c */ LIMIT 5;")
    const b = digestOf('select * from `orders` where USER_ID in (7,8) and note = "x" limit 9 -- tail')
    expect(a.text).toBe('select * from orders where user_id in (?+) and note = ? limit ?')
    expect(b.text).toBe(a.text)
    expect(a.longestList).toBe(3)
    expect(digestOf('SELECT * FROM orders WHERE user_id IN (1)').text).toBe('select * from orders where user_id in (?)')
    expect(digestOf("SELECT x'ff', -5, 1.5e-3, NULL").text).toBe('select ?, ?, ?, ?')
  })

  it('splits on ; only outside strings, identifiers and comments', () => {
    const s = new StatementSplitter(1000)
    const out = [...s.feed("SELECT ';' FROM t; -- a ; comment\nSELECT `a;b` FROM t /* ; */;SELECT \"x\\\";\""), ...s.end()]
    expect(out).toEqual(["SELECT ';' FROM t", "-- a ; comment\nSELECT `a;b` FROM t /* ; */", 'SELECT "x\\";"'])
    expect(() => new StatementSplitter(10).feed('SELECT 123456789 FROM t')).toThrow(RangeError)
  })
})

describe('SqlLinter', () => {
  it('classifies each digest once and sorts by count', () => {
    const l = new SqlLinter(layout)
    for (let i = 0; i < 5; i++) l.add(`SELECT * FROM orders WHERE user_id = ${i}`)
    l.add('SELECT AVG(total_cents) FROM orders')
    l.add('SELECT * FROM orders WHERE user_id IN (1, 2, 3, 4)')
    l.add('SELECT * FROM orders WHERE user_id IN (1, 2)')
    const r = l.report()
    expect(r.digests.map((d) => d.count)).toEqual([5, 2, 1])
    expect(r.digests[1]).toMatchObject({ class: 'multi', shards: 4 })
    expect(r.summary).toEqual({ user: { digests: 1, statements: 5 }, multi: { digests: 1, statements: 2 }, unsupported: { digests: 1, statements: 1 } })
  })

  it('bounds the number of digests it keeps', () => {
    const l = new SqlLinter(layout, { maxDigests: 2 })
    l.add('SELECT 1')
    l.add('SELECT a FROM t')
    l.add('SELECT b FROM t')
    expect(l.report()).toMatchObject({ overflowStatements: 1 })
    expect(l.report().digests).toHaveLength(2)
  })
})
