/**
 * Statement digests: a single-pass tokenizer (strings, numbers, comments,
 * quoted identifiers) that replaces every literal with `?`, lower-cases
 * keywords and identifiers, collapses whitespace, and folds literal lists
 * such as `IN (1, 2, 3)` into `(?+)`. It never classifies: classification
 * parses the statement (classify.ts). Pure, no I/O.
 *
 * Given a {@link LiteralCapture}, the same pass also records what the digest
 * hides: each literal's kind and value, and how many items each folded list
 * had. Two statements with one digest and one capture pattern get the same
 * verdict, so the linter parses one statement per pattern, not per digest.
 */

/** The digest of one statement. */
export interface Digest {
  /** Normalised text: literals as `?`, lists of two or more literals as `(?+)`. */
  readonly text: string
  /** Length of the longest literal list folded into `(?+)` (0 if none). */
  readonly longestList: number
}

const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11
const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isWord = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95 || c === 36 || c > 127

/**
 * What the digest hid in one statement. `lits[k]` is the k-th literal as its
 * kind letter followed by the value the parser gives it: `i` integer, `b`
 * integer above 2^53, `d` decimal, `s` quoted string, then kinds without a
 * value: `p` placeholder, `N` NULL, `T` TRUE, `F` FALSE, `X...` prefixed
 * strings (x'..', N'..', _utf8mb4'..'). A literal whose parsed value this
 * tokenizer cannot tell exactly (1e3, 0x1F, `- 5`, 1.) makes the statement
 * `exact = false`: the linter then parses it.
 */
export class LiteralCapture {
  lits: string[] = []
  folds = ''
  exact = true

  /** Clears the capture for the next statement. */
  reset(): void {
    this.lits.length = 0
    this.folds = ''
    this.exact = true
  }

  /**
   * The statement's pattern: literal kinds, which literals are equal (by
   * parsed value), and the folded list lengths; null when not exact.
   */
  pattern(): string | null {
    if (!this.exact) return null
    let out = ''
    const lits = this.lits
    // few literals (the usual case): compare pairwise; many: a map
    const seen: Map<string, number> | null = lits.length > 12 ? new Map() : null
    for (let k = 0; k < lits.length; k++) {
      const lit = lits[k]!
      const kind = lit.charCodeAt(0)
      out += lit[0]
      // i, b, d, s carry a value: equal values (5 and '5' alike) are what routing depends on
      if (kind === 105 || kind === 98 || kind === 100 || kind === 115) {
        let first = -1
        if (seen) {
          const v = lit.slice(1)
          first = seen.get(v) ?? -1
          if (first < 0) seen.set(v, k)
        } else {
          for (let j = 0; j < k && first < 0; j++) {
            const o = lits[j]!
            const ok = o.charCodeAt(0)
            if ((ok === 105 || ok === 98 || ok === 100 || ok === 115) && sameValue(o, lit)) first = j
          }
        }
        if (first >= 0) out += first
      } else if (kind === 88) out += lit.slice(1)
      out += ','
    }
    return out + '|' + this.folds
  }

  /** The parsed value of literal `k` (as a key's text), or null for a placeholder or a value-less kind. */
  value(k: number): string | null {
    const lit = this.lits[k]
    if (!lit) return null
    const kind = lit.charCodeAt(0)
    return kind === 105 || kind === 98 || kind === 100 || kind === 115 ? lit.slice(1) : null
  }
}

/** Whether two captured literals carry the same value (their kind letters may differ: 5 and '5'). */
function sameValue(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  for (let i = 1; i < a.length; i++) if (a.charCodeAt(i) !== b.charCodeAt(i)) return false
  return true
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const PLAIN_DIGITS = /^[0-9]+$/

/** The kind+value of a number token (with its sign when one is attached), or null when the parser's value is not certain. */
function numberLiteral(text: string): string | null {
  // the common case first: plain digits, no leading zero, below 2^53 (the text is the parsed value)
  const c0 = text.charCodeAt(0)
  if (text.length <= 15 && c0 >= 49 && c0 <= 57 && PLAIN_DIGITS.test(text)) return 'i' + text
  const neg = c0 === 45
  const digits = neg ? text.slice(1) : text
  if (/^[0-9]+$/.test(digits)) {
    if (digits.length <= 15 || BigInt(digits) < MAX_SAFE) return 'i' + String(Number(text) + 0)
    // above 2^53 the parser keeps the digits (a `bigint` node); leading zeros and signs there are not certain
    return neg || digits.charCodeAt(0) === 48 ? null : 'b' + digits
  }
  if (/^[1-9][0-9]*\.[0-9]+$|^0\.[0-9]+$/.test(digits)) return 'd' + text
  return null
}

/** Tokens after which a '-' is a sign, not a subtraction. */
const UNARY_BEFORE = new Set(['=', '<', '>', '<=', '>=', '<>', '!=', '(', ',', '+', '*', '/', '-', 'and', 'or', 'in', 'values', 'select', 'then', 'when', 'else', 'not', 'by', 'between'])

/** Keywords written with a space before '(' (function names are written without). */
const SPACED_BEFORE_PAREN = new Set(['in', 'values', 'value', 'and', 'or', 'not', 'exists', 'where', 'on', 'from', 'join', 'select', 'as', 'using', 'into', 'set'])

/** Index just past a quoted run starting at `i` (quote char at `i`); backslash escapes and doubled quotes honoured. */
function skipQuoted(s: string, i: number, q: number): number {
  let j = i + 1
  while (j < s.length) {
    const c = s.charCodeAt(j)
    if (c === 92 && q !== 96) j += 2
    else if (c === q) {
      if (s.charCodeAt(j + 1) === q) j += 2
      else return j + 1
    } else j++
  }
  return j
}

/**
 * Computes the digest of one statement.
 * @example digestOf("SELECT * FROM orders WHERE user_id IN (1, 2)").text // "select * from orders where user_id in (?+)"
 */
export function digestOf(sql: string, capture?: LiteralCapture): Digest {
  const out: string[] = []
  let longestList = 0
  let i = 0
  const n = sql.length
  const lits = capture?.lits
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (isSpace(c)) { i++; continue }
    // comments: -- (followed by space), #, /* */
    if (c === 45 && sql.charCodeAt(i + 1) === 45 && (i + 2 >= n || isSpace(sql.charCodeAt(i + 2)))) {
      while (i < n && sql.charCodeAt(i) !== 10) i++
      continue
    }
    if (c === 35) { while (i < n && sql.charCodeAt(i) !== 10) i++; continue }
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const end = sql.indexOf('*/', i + 2)
      i = end < 0 ? n : end + 2
      continue
    }
    if (c === 39 || c === 34) {
      out.push('?')
      const j = skipQuoted(sql, i, c)
      if (lits) lits.push('s' + sql.slice(i + 1, j - 1))
      i = j
      continue
    }
    if (c === 96) {
      const j = skipQuoted(sql, i, c)
      out.push(sql.slice(i + 1, j - 1).toLowerCase())
      i = j
      continue
    }
    if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      let j = i + 1
      while (j < n && (isWord(sql.charCodeAt(j)) || sql.charCodeAt(j) === 46)) j++
      // exponent sign: 1e-5
      if ((sql.charCodeAt(j - 1) | 32) === 101 && (sql.charCodeAt(j) === 45 || sql.charCodeAt(j) === 43)) {
        j++
        while (j < n && isDigit(sql.charCodeAt(j))) j++
      }
      // a unary minus right after an operator or '(' belongs to the literal
      const prev = out[out.length - 1]
      let signed = false
      if (prev === '-' && (out.length < 2 || UNARY_BEFORE.has(out[out.length - 2]!))) { out.pop(); signed = true }
      out.push('?')
      if (capture) {
        // `-5` is a number to the parser, `- 5` an expression: only an attached sign is part of the value
        const lit = signed && sql.charCodeAt(i - 1) !== 45 ? null : numberLiteral(signed ? '-' + sql.slice(i, j) : sql.slice(i, j))
        if (lit === null) capture.exact = false
        lits!.push(lit ?? 'x')
      }
      i = j
      continue
    }
    if (isWord(c)) {
      let j = i + 1
      while (j < n && isWord(sql.charCodeAt(j))) j++
      const word = sql.slice(i, j)
      // x'..', b'..', N'..', _utf8mb4'..' are single literals
      if (sql.charCodeAt(j) === 39 && (word.length === 1 || word.charCodeAt(0) === 95)) {
        out.push('?')
        if (lits) lits.push('X' + word.toLowerCase())
        i = skipQuoted(sql, j, 39)
        continue
      }
      const lower = word.toLowerCase()
      const lit = lower === 'null' ? 'N' : lower === 'true' ? 'T' : lower === 'false' ? 'F' : null
      out.push(lit ? '?' : lower)
      if (lit && lits) lits.push(lit)
      i = j
      continue
    }
    // two-character operators
    const two = sql.slice(i, i + 2)
    if (two === '<=' || two === '>=' || two === '<>' || two === '!=' || two === '||' || two === '&&' || two === ':=') {
      out.push(sql.slice(i, sql.startsWith('<=>', i) ? i + 3 : i + 2))
      i += sql.startsWith('<=>', i) ? 3 : 2
      continue
    }
    if (c === 41) longestList = foldList(out, longestList, capture)
    else if (c === 63 && lits) lits.push('p')
    out.push(sql[i]!)
    i++
  }
  while (out.length > 0 && out[out.length - 1] === ';') out.pop()
  return { text: join(out), longestList }
}

/** At a ')': if the tokens since the matching '(' are `? , ? , ...` (2+), replace them with one `?+` (and note the list's shape in the capture). */
function foldList(out: string[], longest: number, capture?: LiteralCapture): number {
  let k = out.length - 1
  let count = 0
  let shape = ''
  while (k >= 0) {
    if (out[k] !== '?' && out[k] !== '?+') return longest
    count += out[k] === '?' ? 1 : 2
    shape += out[k] === '?' ? '.' : '+'
    k--
    if (out[k] === '(') break
    if (out[k] !== ',') return longest
    k--
  }
  if (k < 0 || count < 2) return longest
  out.length = k + 1
  out.push('?+')
  // nested lists keep their item sequence; a flat list only its length
  if (capture) capture.folds += (shape.includes('+') ? shape : String(shape.length)) + ';'
  return Math.max(longest, count)
}

function join(tokens: readonly string[]): string {
  let s = ''
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (i > 0 && t !== ',' && t !== ')' && t !== '.' && tokens[i - 1] !== '(' && tokens[i - 1] !== '.' && t !== '(' ) s += ' '
    else if (t === '(' && i > 0 && (!isWord(tokens[i - 1]!.charCodeAt(0)) || SPACED_BEFORE_PAREN.has(tokens[i - 1]!))) s += ' '
    s += t
  }
  return s
}

/**
 * Splits a stream of SQL text into statements at `;` outside strings,
 * quoted identifiers and comments. Feed chunks; each call returns the
 * statements completed so far. `maxBytes` bounds one statement.
 */
export class StatementSplitter {
  private buf = ''
  private state: 0 | 39 | 34 | 96 | 1 | 2 = 0 // 0 normal, quote char, 1 line comment, 2 block comment
  private scanned = 0

  constructor(private readonly maxChars: number) {}

  /** Adds text; returns complete statements (trimmed, non-empty). Throws RangeError when one statement exceeds the limit. */
  feed(text: string): string[] {
    this.buf += text
    const done: string[] = []
    let start = 0
    let i = this.scanned
    const s = this.buf
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i)
      switch (this.state) {
        case 0:
          if (c === 59) {
            const stmt = s.slice(start, i).trim()
            if (stmt.length > 0) done.push(stmt)
            start = i + 1
          } else if (c === 39 || c === 34 || c === 96) this.state = c
          else if (c === 35 || (c === 45 && s.charCodeAt(i + 1) === 45)) this.state = 1
          else if (c === 47 && s.charCodeAt(i + 1) === 42) { this.state = 2; i++ }
          break
        case 1:
          if (c === 10) this.state = 0
          break
        case 2:
          if (c === 42 && s.charCodeAt(i + 1) === 47) { this.state = 0; i++ }
          break
        default:
          if (c === 92 && this.state !== 96) i++
          else if (c === this.state) this.state = 0
      }
    }
    this.buf = s.slice(start)
    this.scanned = Math.min(i, s.length) - start
    if (this.buf.length > this.maxChars) throw new RangeError(`statement longer than ${this.maxChars} characters`)
    return done
  }

  /** The statement left after the last `;` (if any). */
  end(): string[] {
    const rest = this.buf.trim()
    this.buf = ''
    this.scanned = 0
    return rest.length > 0 ? [rest] : []
  }
}
