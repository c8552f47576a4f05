/**
 * A fast parser for the plain statements most of a log is made of: SELECT
 * (columns, COUNT/SUM/MIN/MAX/AVG, one table, WHERE, GROUP BY, ORDER BY,
 * LIMIT, FOR UPDATE), UPDATE / DELETE of one table, INSERT / REPLACE ...
 * VALUES. It builds the node-sql-parser AST shape the classifier reads, with
 * SQL's AND/OR precedence, and returns null for anything else (joins,
 * subqueries, functions, comments, keywords as names...), which then goes to
 * node-sql-parser. node-sql-parser costs ~0.1-0.4 ms a statement; this
 * costs a few microseconds, which is what a log of distinct shapes needs.
 * `test/unit/sql-fast-parse.test.ts` checks it gives the classifier what
 * node-sql-parser gives, statement by statement. Pure.
 */
import type { Node } from './ast.js'

type Tok = { k: 'w' | 'q' | 'n' | 's' | 'p'; v: string }

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** Words that are never a bare column or table name here (reserved, or read as a keyword by node-sql-parser). */
const KEYWORDS = new Set(('select from where and or not in is null like between group by order asc desc limit offset for update set delete insert into values replace true false distinct as having join on using union all ' +
  'inner left right cross outer natural straight_join exists case when then else end interval lock share mode key primary unique index default ' +
  'div mod xor regexp rlike sounds binary collate escape with window over partition rows range current row high_priority low_priority ' +
  'ignore quick delayed duplicate sql_calc_found_rows straight sql_no_cache sql_cache returning into outfile dumpfile table database schema ' +
  'date time timestamp year month day hour minute second week quarter char character varchar int integer bigint decimal numeric float double real ' +
  'add alter create drop rename truncate call do handler load status_only convert cast if ifnull nullif coalesce match against ' +
  'separator value boolean cascade except explain full lateral read recursive show write ' +
  'accessible analyze before blob both check condition constraint continue current_date current_time current_timestamp current_user cursor databases ' +
  'day_hour day_microsecond day_minute day_second dec declare delayed describe deterministic distinctrow drop dual each elseif enclosed escaped exit ' +
  'fetch float4 float8 force foreign fulltext function generated get go grant grouping groups hour_microsecond hour_minute hour_second infile inout ' +
  'insensitive intersect int1 int2 int3 int4 int8 iterate json_table keys kill lag last_value lead leading leave lines linear localtime ' +
  'localtimestamp long longblob longtext loop master_bind maxvalue mediumblob mediumint mediumtext middleint minute_microsecond minute_second minus ' +
  'modifies no_write_to_binlog nth_value ntile of optimize optimizer_costs option optionally out outfile percent_rank precision procedure purge rank ' +
  'reads read_write references release repeat require resignal restrict return revoke row_number schemas sensitive signal smallint spatial ' +
  'specific sql sqlexception sqlstate sqlwarning sql_big_result ssl starting stored terminated tinyblob tinyint tinytext to trailing trigger ' +
  'unlock unsigned usage use utc_date utc_time utc_timestamp varbinary varcharacter varying virtual vector while year_month zerofill').split(' '))

function tokenize(sql: string): Tok[] | null {
  const out: Tok[] = []
  let i = 0
  const n = sql.length
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === 32 || c === 9 || c === 10 || c === 13) { i++; continue }
    if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95) {
      let j = i + 1
      while (j < n) {
        const d = sql.charCodeAt(j)
        if ((d >= 97 && d <= 122) || (d >= 65 && d <= 90) || (d >= 48 && d <= 57) || d === 95) j++
        else break
      }
      // x'..', N'..', _utf8'..', and words glued to $ or non-ASCII: not ours
      const next = sql.charCodeAt(j)
      if (next === 39 || next === 34 || next === 36 || next > 127) return null
      out.push({ k: 'w', v: sql.slice(i, j) })
      i = j
      continue
    }
    // a sign glued to its digits is part of the number, as node-sql-parser reads it (`- 5` is an expression)
    const glued = c === 45 && sql.charCodeAt(i + 1) >= 48 && sql.charCodeAt(i + 1) <= 57
    if ((c >= 48 && c <= 57) || glued) {
      let j = i + (glued ? 2 : 1)
      while (j < n && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 57) j++
      if (sql.charCodeAt(j) === 46) {
        const f = j + 1
        j = f
        while (j < n && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 57) j++
        if (j === f) return null
      }
      const d = sql.charCodeAt(j)
      if ((d >= 97 && d <= 122) || (d >= 65 && d <= 90) || d === 95 || d === 46) return null
      out.push({ k: 'n', v: sql.slice(i, j) })
      i = j
      continue
    }
    if (c === 39 || c === 34 || c === 96) {
      let j = i + 1
      for (;;) {
        if (j >= n) return null
        const d = sql.charCodeAt(j)
        if (d === 92 && c !== 96) { j += 2; continue }
        if (d === c) {
          if (sql.charCodeAt(j + 1) === c) { j += 2; continue }
          break
        }
        j++
      }
      const body = sql.slice(i + 1, j)
      if (c === 96) {
        if (body.includes('`') || body.length === 0) return null
        out.push({ k: 'q', v: body })
      } else out.push({ k: 's', v: (c === 39 ? "'" : '"') + body })
      i = j + 1
      continue
    }
    const two = sql.slice(i, i + 2)
    if (two === '<>' || two === '!=' || two === '<=' || two === '>=') {
      if (sql.startsWith('<=>', i)) return null
      out.push({ k: 'p', v: two })
      i += 2
      continue
    }
    if ('=<>(),.*+-?;'.includes(sql[i]!)) {
      if (c === 45 && sql.charCodeAt(i + 1) === 45) return null // comment
      out.push({ k: 'p', v: sql[i]! })
      i++
      continue
    }
    return null
  }
  while (out.length > 0 && out[out.length - 1]!.v === ';') out.pop()
  return out.some((t) => t.v === ';') ? null : out
}

class Fail extends Error {}

class Parser {
  private i = 0
  constructor(private readonly t: Tok[]) {}

  private peek(k = 0): Tok | undefined { return this.t[this.i + k] }
  private word(k = 0): string { const t = this.t[this.i + k]; return t && t.k === 'w' ? t.v.toLowerCase() : '' }
  private isP(v: string, k = 0): boolean { const t = this.t[this.i + k]; return !!t && t.k === 'p' && t.v === v }
  private fail(): never { throw new Fail() }
  private eatW(w: string): boolean { if (this.word() === w) { this.i++; return true } return false }
  private needW(w: string): void { if (!this.eatW(w)) this.fail() }
  private eatP(v: string): boolean { if (this.isP(v)) { this.i++; return true } return false }
  private needP(v: string): void { if (!this.eatP(v)) this.fail() }
  get done(): boolean { return this.i >= this.t.length }

  name(): string {
    const t = this.peek()
    if (!t) this.fail()
    if (t.k === 'q') { this.i++; return t.v }
    if (t.k === 'w' && !KEYWORDS.has(t.v.toLowerCase())) { this.i++; return t.v }
    this.fail()
  }

  column(): Node {
    const a = this.name()
    if (this.eatP('.')) {
      if (this.eatP('*')) return { type: 'column_ref', table: a, column: '*' }
      return { type: 'column_ref', table: a, column: this.name() }
    }
    return { type: 'column_ref', table: null, column: a }
  }

  tableRef(): Node {
    let db: string | null = null
    let table = this.name()
    if (this.eatP('.')) { db = table; table = this.name() }
    let as: string | null = null
    if (this.eatW('as')) as = this.name()
    else if (this.peek()?.k === 'q' || (this.peek()?.k === 'w' && !KEYWORDS.has(this.word()))) as = this.name()
    return { db, table, as }
  }

  value(): Node {
    const t = this.peek()
    if (!t) this.fail()
    if (t.k === 's') { this.i++; return { type: t.v[0] === "'" ? 'single_quote_string' : 'double_quote_string', value: t.v.slice(1) } }
    if (t.k === 'p' && t.v === '?') { this.i++; return { type: 'origin', value: '?' } }
    if (t.k === 'n') return this.number()
    const w = this.word()
    if (w === 'null') { this.i++; return { type: 'null', value: null } }
    if (w === 'true' || w === 'false') { this.i++; return { type: 'bool', value: w === 'true' } }
    this.fail()
  }

  private number(): Node {
    const raw = this.peek()!.v
    this.i++
    const neg = raw.charCodeAt(0) === 45
    const text = neg ? raw.slice(1) : raw
    if (text.includes('.')) {
      // node-sql-parser keeps decimals as text; a leading zero before digits is not certain
      if (/^0[0-9]/.test(text)) this.fail()
      return { type: 'number', value: (neg ? '-' : '') + text }
    }
    if (text.length <= 15 || BigInt(text) < MAX_SAFE) return { type: 'number', value: neg ? -Number(text) : Number(text) }
    if (neg || text.charCodeAt(0) === 48) this.fail()
    return { type: 'bigint', value: text }
  }

  expr(): Node {
    let left = this.andExpr()
    while (this.eatW('or')) left = { type: 'binary_expr', operator: 'OR', left, right: this.andExpr() }
    return left
  }

  private andExpr(): Node {
    let left = this.notExpr()
    while (this.eatW('and')) left = { type: 'binary_expr', operator: 'AND', left, right: this.notExpr() }
    return left
  }

  private notExpr(): Node {
    if (this.eatW('not')) return { type: 'unary_expr', operator: 'NOT', expr: this.notExpr() }
    if (this.eatP('(')) {
      const e = this.expr()
      this.needP(')')
      return { ...e, parentheses: true }
    }
    return this.predicate()
  }

  private predicate(): Node {
    const left = this.column()
    const t = this.peek()
    if (t?.k === 'p' && ['=', '<>', '!=', '<', '>', '<=', '>='].includes(t.v)) {
      this.i++
      const right = this.peek()?.k === 'w' && !['null', 'true', 'false'].includes(this.word()) || this.peek()?.k === 'q' ? this.column() : this.value()
      return { type: 'binary_expr', operator: t.v, left, right }
    }
    const not = this.eatW('not')
    if (this.eatW('in')) {
      this.needP('(')
      const value = [this.value()]
      while (this.eatP(',')) value.push(this.value())
      this.needP(')')
      return { type: 'binary_expr', operator: not ? 'NOT IN' : 'IN', left, right: { type: 'expr_list', value } }
    }
    if (this.eatW('between')) {
      const a = this.value()
      this.needW('and')
      return { type: 'binary_expr', operator: not ? 'NOT BETWEEN' : 'BETWEEN', left, right: { type: 'expr_list', value: [a, this.value()] } }
    }
    if (this.eatW('like')) return { type: 'binary_expr', operator: not ? 'NOT LIKE' : 'LIKE', left, right: this.value() }
    if (!not && this.eatW('is')) {
      const isNot = this.eatW('not')
      this.needW('null')
      return { type: 'binary_expr', operator: isNot ? 'IS NOT' : 'IS', left, right: { type: 'null', value: null } }
    }
    this.fail()
  }

  private selectItem(): Node {
    const w = this.word()
    let expr: Node
    if (['count', 'sum', 'min', 'max', 'avg'].includes(w) && this.isP('(', 1)) {
      this.i += 2
      // node-sql-parser takes DISTINCT inside COUNT only
      const distinct = w === 'count' && this.eatW('distinct') ? 'DISTINCT' : null
      if (this.isP('*') && w === 'count' && !distinct) {
        this.i++
        expr = { type: 'aggr_func', name: 'COUNT', args: { expr: { type: 'star', value: '*' } }, over: null }
      } else expr = { type: 'aggr_func', name: w.toUpperCase(), args: { distinct, expr: this.column(), orderby: null, separator: null }, over: null }
      this.needP(')')
    } else if (this.isP('*')) {
      this.i++
      expr = { type: 'column_ref', table: null, column: '*' }
    } else expr = this.column()
    let as: string | null = null
    if (this.eatW('as')) as = this.name()
    else if (this.peek()?.k === 'q' || (this.peek()?.k === 'w' && !KEYWORDS.has(this.word()))) as = this.name()
    return { expr, as }
  }

  private orderBy(): Node[] | null {
    if (!this.eatW('order')) return null
    this.needW('by')
    const items: Node[] = []
    do {
      const expr = this.peek()?.k === 'n' ? this.value() : this.column()
      const type = this.eatW('desc') ? 'DESC' : this.eatW('asc') ? 'ASC' : null
      items.push({ expr, type })
    } while (this.eatP(','))
    return items
  }

  private limit(allowOffset: boolean): Node | null {
    if (!this.eatW('limit')) return null
    const a = this.value()
    if (allowOffset && this.eatW('offset')) return { seperator: 'offset', value: [a, this.value()] }
    if (allowOffset && this.eatP(',')) return { seperator: ',', value: [a, this.value()] }
    return { seperator: '', value: [a] }
  }

  select(): Node {
    this.needW('select')
    const distinct = this.eatW('distinct') ? 'DISTINCT' : null
    const columns = [this.selectItem()]
    while (this.eatP(',')) columns.push(this.selectItem())
    this.needW('from')
    const from = [this.tableRef()]
    const where = this.eatW('where') ? this.expr() : null
    let groupby: Node | null = null
    if (this.eatW('group')) {
      this.needW('by')
      const cols = [this.column()]
      while (this.eatP(',')) cols.push(this.column())
      groupby = { columns: cols, modifiers: [null] }
    }
    const orderby = this.orderBy()
    const limit = this.limit(true)
    let locking_read: string | null = null
    if (this.eatW('for')) { this.needW('update'); locking_read = 'FOR UPDATE' }
    return { type: 'select', distinct, columns, from, where, groupby, having: null, orderby, limit, locking_read, window: null }
  }

  update(): Node {
    this.needW('update')
    const table = [this.tableRef()]
    this.needW('set')
    const set: Node[] = []
    do {
      const c = this.column()
      this.needP('=')
      let value: Node
      if (this.peek()?.k === 'w' && !['null', 'true', 'false'].includes(this.word()) || this.peek()?.k === 'q') {
        const col = this.column()
        const op = this.isP('+') ? '+' : this.isP('-') ? '-' : null
        if (op) { this.i++; value = { type: 'binary_expr', operator: op, left: col, right: this.value() } } else value = col
      } else value = this.value()
      set.push({ column: c.column, value, table: c.table })
    } while (this.eatP(','))
    const where = this.eatW('where') ? this.expr() : null
    return { type: 'update', table, set, where, orderby: this.orderBy(), limit: this.limit(false) }
  }

  delete(): Node {
    this.needW('delete')
    this.needW('from')
    const t = this.tableRef()
    const where = this.eatW('where') ? this.expr() : null
    return { type: 'delete', table: [{ ...t, addition: true }], from: [t], where, orderby: this.orderBy(), limit: this.limit(false) }
  }

  insert(): Node {
    const type = this.word() === 'replace' ? 'replace' : 'insert'
    this.i++
    const prefix = this.eatW('into') ? 'into' : ''
    const table = [this.tableRef()]
    this.needP('(')
    const columns = [this.name()]
    while (this.eatP(',')) columns.push(this.name())
    this.needP(')')
    this.needW('values')
    const rows: Node[] = []
    do {
      this.needP('(')
      const value = [this.rowValue()]
      while (this.eatP(',')) value.push(this.rowValue())
      this.needP(')')
      rows.push({ type: 'expr_list', value, prefix: null })
    } while (this.eatP(','))
    return { type, table, columns, values: { type: 'values', values: rows }, partition: null, prefix, on_duplicate_update: null }
  }

  private rowValue(): Node {
    const w = this.word()
    if ((w === 'now' || w === 'utc_timestamp' || w === 'current_timestamp') && this.isP('(', 1)) {
      this.i += 2
      const args = this.isP(')') ? [] : [this.value()]
      this.needP(')')
      return { type: 'function', name: { name: [{ type: 'default', value: w.toUpperCase() }] }, args: { type: 'expr_list', value: args }, over: null }
    }
    return this.value()
  }
}

/**
 * Parses one plain statement, or returns null to leave it to node-sql-parser.
 * @example fastParse('SELECT * FROM orders WHERE user_id = 5')?.type // 'select'
 */
export function fastParse(sql: string): Node | null {
  const tokens = tokenize(sql)
  if (!tokens || tokens.length === 0) return null
  const p = new Parser(tokens)
  try {
    const first = tokens[0]!.k === 'w' ? tokens[0]!.v.toLowerCase() : ''
    const ast = first === 'select' ? p.select() : first === 'update' ? p.update() : first === 'delete' ? p.delete() : first === 'insert' || first === 'replace' ? p.insert() : null
    return ast && p.done ? ast : null
  } catch (err) {
    if (err instanceof Fail) return null
    throw err
  }
}
