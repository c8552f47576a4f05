/**
 * The fast parser (src/sql/fast-parse.ts) against node-sql-parser: for every
 * statement it accepts, the classifier must give exactly what it gives on
 * node-sql-parser's AST; a statement node-sql-parser rejects must be left to
 * it. Statements: the lint catalogue, the synthetic log's shapes, the
 * oracle's random grammar, and a list of traps.
 */
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { classifyAst, classifyNormalized } from '../../src/sql/classify.js'
import { fastParse } from '../../src/sql/fast-parse.js'
import { parseStatement } from '../../src/sql/parse.js'
import type { SqlLayout } from '../../src/sql/types.js'
import { statementArbitrary } from '../integration/sql-oracle-grammar.js'

const layout: SqlLayout = { database: 'legacydb', table: 'orders', userColumn: 'user_id', merchantColumn: 'merchant_id', primaryKey: 'order_id' }
const catalogue = (JSON.parse(readFileSync(new URL('../fixtures/sql/catalogue.json', import.meta.url), 'utf8')) as { sql: string }[]).map((c) => c.sql)

const TRAPS = [
  'SELECT * FROM orders WHERE user_id = - 5',
  'SELECT * FROM orders WHERE user_id = -5',
  'SELECT * FROM orders WHERE user_id=-5 AND merchant_id=007',
  'SELECT * FROM orders WHERE user_id = 1.',
  'SELECT * FROM orders WHERE user_id = 1.50 OR user_id = 1.5',
  'SELECT * FROM orders WHERE user_id = 012.5',
  'SELECT * FROM orders WHERE order_id = 12345678901234567890',
  'SELECT * FROM orders WHERE order_id = 0012345678901234567890',
  'SELECT * FROM orders WHERE user_id = 1e3',
  'SELECT * FROM orders WHERE user_id = 0x1F',
  "SELECT * FROM orders WHERE note = 'it''s' AND user_id = 'a\\'b'",
  "SELECT * FROM orders WHERE note = N'x' AND user_id = 5",
  "SELECT * FROM orders WHERE note = x'ff' AND user_id = 5",
  'SELECT * FROM orders WHERE user_id = 5 -- tail',
  'SELECT * FROM orders /* c */ WHERE user_id = 5',
  'SELECT `order`, `key` FROM `orders` WHERE `user_id` = 5',
  'SELECT order FROM orders WHERE user_id = 5',
  'SELECT date, type, value FROM orders WHERE user_id = 5',
  'SELECT status FROM orders WHERE status = 1',
  'SELECT * FROM orders WHERE user_id = ? AND merchant_id IN (?, ?)',
  'SELECT * FROM orders WHERE user_id = NULL',
  'SELECT * FROM orders WHERE user_id IN (5, NULL)',
  'SELECT * FROM orders WHERE a = 1 OR b = 2 AND user_id = 3',
  'SELECT * FROM orders WHERE NOT user_id = 3 AND merchant_id = 4',
  'SELECT * FROM orders WHERE user_id BETWEEN 1 AND 1',
  'SELECT * FROM orders WHERE user_id = 5 LIMIT 5, 10',
  'SELECT * FROM orders WHERE user_id IN (1, 2) LIMIT 10 OFFSET 5',
  'SELECT COUNT(*) AS n, SUM(DISTINCT total_cents) s FROM orders o WHERE o.user_id IN (1, 2)',
  'SELECT o.* FROM orders o WHERE o.user_id = 2',
  'SELECT * FROM orders WHERE user_id = 5;',
  'SELECT * FROM orders WHERE user_id = 5; SELECT 1',
  'UPDATE orders SET version = version + 1, note = NULL WHERE user_id = 5 ORDER BY created_at DESC LIMIT 1',
  'UPDATE orders SET version = version -1 WHERE user_id = 5',
  'UPDATE orders SET user_id = 6 WHERE user_id = 5',
  'DELETE FROM orders WHERE order_id IN (1, 2, 3) LIMIT 2',
  "INSERT INTO orders (order_id, user_id) VALUES (1000000001, 5), (1000000002, 6)",
  "REPLACE orders (order_id, user_id, created_at) VALUES (1000000001, 5, NOW())",
  'INSERT INTO orders VALUES (1, 2)',
  'SELECT * FROM orders WHERE user_id = 5 FOR UPDATE',
  'SELECT * FROM orders WHERE user_id = 5 LOCK IN SHARE MODE',
  'SELECT * FROM orders WHERE user_id = 42 AND',
  'SELECT * FROM orders WHERE (user_id = 1 OR user_id = 2) AND (merchant_id = 3)',
  'SELECT * FROM orders WHERE user_id <=> 5',
  'SELECT * FROM orders WHERE user_id != 5 AND merchant_id <> 6',
]

/** What the classifier says, on the fast AST and on node-sql-parser's. */
function both(sql: string): { fast: unknown; full: unknown; accepted: boolean } {
  const fastAst = fastParse(sql)
  const parsed = parseStatement(sql)
  const full = parsed.ok ? classifyAst(parsed.ast, layout) : 'rejected by node-sql-parser'
  return { fast: fastAst ? classifyNormalized(fastAst, layout) : full, full, accepted: fastAst !== null }
}

/** Words as column, alias and table names: a word node-sql-parser refuses as a name must not be taken by the fast parser either. */
const WORDS = ('accessible account action admin after against aggregate algorithm always analyze any array ascii at before begin bit blob block bool boolean both btree ' +
  'cascade chain change check close coalesce code collation column columns comment commit condition constraint continue count cube current cursor data ' +
  'databases datetime dec declare describe distinctrow drop dual each elseif enum error except exists exit explain fetch fields file first fixed float4 ' +
  'force foreign full fulltext function general generated get global go grant grouping groups hash history host ignore infile inout intersect iterate ' +
  'json json_table keys kill lag language last lateral lead leading leave level lines linear list local localtime lock locked long loop match max ' +
  'maxvalue member memory merge min minus mode name names national new next no none now of off old only open option out outfile owner page ' +
  'partition password path percent_rank point position precision procedure purge quarter quick range rank read reads recursive references release ' +
  'repeat require restrict return revoke role rollback row rows row_number schema second sensitive separator serial session share show signal ' +
  'signed simple some source spatial specific sql sqlstate ssl start starting status stored string sum system table terminated text to trailing ' +
  'trigger type types unlock unsigned usage use user utc_date values varying view virtual wait while window work write year zerofill ' +
  'total amount price qty quantity sku kind state result sequence version label flag priority target').split(' ')
const WORD_STATEMENTS = WORDS.flatMap((w) => [`SELECT ${w} FROM orders WHERE user_id = 5`, `SELECT * FROM orders WHERE ${w} = 1 AND user_id = 5`, `UPDATE orders SET ${w} = 1 WHERE user_id = 5`, `SELECT * FROM orders ${w} WHERE user_id = 5`, `SELECT a AS ${w} FROM orders WHERE user_id = 5`])

describe('fast parser gives the classifier what node-sql-parser gives', () => {
  it('on words used as names', () => {
    const differ = WORD_STATEMENTS.filter((sql) => { const { fast, full } = both(sql); return JSON.stringify(fast) !== JSON.stringify(full) })
    expect(differ).toEqual([])
  })

  it.each([...catalogue, ...TRAPS].map((s) => [s]))('%s', (sql) => {
    const { fast, full } = both(sql)
    expect(fast).toEqual(full)
  })

  it('takes most plain statements (it is not vacuous) and the cold-path bench statement', () => {
    const taken = catalogue.filter((s) => fastParse(s) !== null).length
    expect(taken).toBeGreaterThan(catalogue.length * 0.45)
    expect(fastParse('SELECT c1, status FROM orders WHERE user_id = 1 AND merchant_id = 7 ORDER BY created_at DESC LIMIT 20')).not.toBeNull()
  })

  it('on random statements of the oracle grammar', () => {
    const values = { users: [1, 2, 5, 121], merchants: [3, 7, 500], orderIds: ['55', '1234567890123', '7205759403792793601'] }
    let taken = 0
    fc.assert(fc.property(statementArbitrary(values), (sql) => {
      const { fast, full, accepted } = both(sql)
      if (accepted) taken++
      expect(fast).toEqual(full)
    }), { numRuns: Number(process.env.SQL_FAST_PARSE_RUNS ?? 2000), seed: Number(process.env.SQL_FAST_PARSE_SEED ?? 18) })
    expect(taken).toBeGreaterThan(100)
  })
})
