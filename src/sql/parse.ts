/**
 * The one place that calls the SQL parser (node-sql-parser 5). Its MySQL
 * grammar accepts more of what MariaDB applications send than its MariaDB
 * grammar (which rejects `status` as a column name), so it tries MySQL first
 * and MariaDB second; a statement both reject is `unparsed` with the MySQL
 * grammar's message.
 */
import sqlParser from 'node-sql-parser'

const parser = new sqlParser.Parser()
const DIALECTS = ['MySQL', 'MariaDB'] as const

/** The AST, or the parser's message. Never throws. */
export type ParseResult = { ok: true; ast: unknown; dialect: string } | { ok: false; message: string }

/** Parses one statement. */
export function parseStatement(sql: string): ParseResult {
  let first: string | null = null
  for (const database of DIALECTS) {
    try {
      return { ok: true, ast: parser.astify(sql, { database }), dialect: database }
    } catch (err) {
      first ??= String((err as Error)?.message ?? err).slice(0, 300)
    }
  }
  return { ok: false, message: first ?? 'parse failed' }
}

/** Renders an AST back to SQL text (MySQL dialect). */
export function renderStatement(ast: unknown, dialect = 'MySQL'): string {
  return parser.sqlify(ast as never, { database: dialect })
}
