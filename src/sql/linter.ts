/**
 * Groups statements by digest and gives each digest the worst verdict of its
 * statements, with how many statements fell in each class. A digest hides
 * literal values, and values can change a verdict (`IN (5, 5)` is one user,
 * `IN (1, 2, 3)` three), so each statement is judged: the tokenizer pass that
 * makes the digest also captures the literals' pattern (digest.ts), and one
 * statement per (digest, pattern) is parsed; the rest reuse its verdict. The
 * number of digests and patterns kept is bounded; past the digest bound,
 * statements are counted as overflow.
 */
import { classifyAst, classifyNormalized, type Classification, type SqlClass, type SqlLayout, type KeyDimension } from './classify.js'
import { digestOf, LiteralCapture } from './digest.js'
import { fastParse } from './fast-parse.js'
import { parseStatement } from './parse.js'
import { advise, type Reason } from './reasons.js'
import { TransactionTracker, type CrossTransaction } from './transactions.js'
import { CLASS_SEVERITY, SQL_CLASSES } from './types.js'

/** One row of the lint report (the issue's `--json` shape; `classes` was added by issue 18). */
export interface DigestReport {
  readonly digest: string
  /** A statement with the digest's (worst) verdict. */
  readonly example: string
  readonly count: number
  /** The worst class over the digest's statements. */
  readonly class: SqlClass
  readonly dimension: KeyDimension | null
  readonly shards: number | null
  readonly reasons: readonly string[]
  readonly suggestion: string
  /** The parser's message, for `unparsed`. */
  readonly error?: string
  readonly merge?: string | null
  /** Statements per class (they add up to `count`). */
  readonly classes: Partial<Record<SqlClass, number>>
}

/** The lint report: per-class totals (by each digest's worst class) and the digests sorted by count, most frequent first. */
export interface LintReport {
  readonly summary: Partial<Record<SqlClass, { digests: number; statements: number }>>
  readonly digests: readonly DigestReport[]
  /** Statements whose digest arrived after the digest limit was reached. */
  readonly overflowStatements: number
}

type Verdict = Classification & { error?: string }

/** A verdict reused by statements with one pattern, and where its keys sit among the literals (null: not found, parse to know). */
interface Variant {
  readonly verdict: Verdict
  readonly keyAt: readonly number[] | null
}

interface Entry {
  example: string
  count: number
  worst: Verdict
  reasons: Reason[]
  shards: number | null
  readonly classes: Partial<Record<SqlClass, number>>
  readonly variants: Map<string, Variant>
}

/** Options for {@link SqlLinter}. */
export interface SqlLinterOptions {
  /** Distinct digests kept (default 100,000). */
  readonly maxDigests?: number
  /** Characters of an example kept (default 2,000). */
  readonly maxExample?: number
  /** The legacy id ceiling, to tell which shard an order id reaches inside a transaction (default: every id is new). */
  readonly idCeiling?: string
  /** Literal patterns kept per digest (default 256); statements past it are parsed each time. */
  readonly maxPatternsPerDigest?: number
}

/**
 * Classifies one statement text (parse + classify); unparsed statements carry
 * the parser's message. Plain statements take the fast parser (fast-parse.ts),
 * the rest node-sql-parser.
 */
export function classifyStatement(sql: string, layout: SqlLayout): Verdict {
  const fast = fastParse(sql)
  if (fast) return classifyNormalized(fast, layout)
  const parsed = parseStatement(sql)
  if (!parsed.ok) {
    return { class: 'unparsed', dimension: null, keys: [], maxShards: null, reasons: ['parse-error'], suggestion: advise('unparsed', ['parse-error'], null), merge: null, mergePlan: null, kind: 'other', error: parsed.message }
  }
  return classifyAst(parsed.ast, layout)
}

const AUTOCOMMIT = /^set (?:session |local |@ @ (?:session\.|local\.)?)?autocommit = (\S+)$/
const WRITE_VERBS = new Set(['insert', 'update', 'delete', 'replace'])

/**
 * Accumulates statements and produces a {@link LintReport}.
 * @example const l = new SqlLinter(layout); l.add('SELECT * FROM orders WHERE user_id = 1'); l.report()
 */
export class SqlLinter {
  private readonly entries = new Map<string, Entry>()
  private overflow = 0
  private total = 0
  private readonly maxDigests: number
  private readonly maxExample: number
  private readonly maxPatterns: number
  private readonly transactions: TransactionTracker
  private readonly capture = new LiteralCapture()

  constructor(private readonly layout: SqlLayout, opts: SqlLinterOptions = {}) {
    this.maxDigests = opts.maxDigests ?? 100_000
    this.maxExample = opts.maxExample ?? 2_000
    this.maxPatterns = opts.maxPatternsPerDigest ?? 256
    this.transactions = new TransactionTracker(opts.idCeiling ?? '0')
  }

  /** Statements seen so far. */
  get statements(): number {
    return this.total
  }

  /** Adds one statement; `session` (a log's thread id) lets transactions be followed. */
  add(sql: string, session = '-'): void {
    this.total++
    const capture = this.capture
    capture.reset()
    const d = digestOf(sql, capture)
    let e = this.entries.get(d.text)
    const pattern = capture.pattern()
    let variant = pattern === null ? undefined : e?.variants.get(pattern)
    if (!variant) {
      if (!e && this.entries.size >= this.maxDigests) { this.overflow++; return }
      variant = this.judge(sql)
      if (e && pattern !== null && e.variants.size < this.maxPatterns) e.variants.set(pattern, variant)
    }
    const v = variant.verdict
    if (!e) {
      e = { example: this.clip(sql), count: 0, worst: v, reasons: [...v.reasons], shards: v.maxShards, classes: {}, variants: new Map() }
      if (pattern !== null) e.variants.set(pattern, variant)
      this.entries.set(d.text, e)
    } else this.merge(e, v, sql)
    e.count++
    e.classes[v.class] = (e.classes[v.class] ?? 0) + 1
    this.follow(session, d.text, sql, variant)
  }

  /** Ends a session (a general log's Quit): an open transaction is judged as it stands. */
  endSession(session: string): void {
    this.recordTransaction(this.transactions.end(session))
  }

  /** Parses and classifies one statement, and finds where its keys sit among the captured literals. */
  private judge(sql: string): Variant {
    const verdict = classifyStatement(sql, this.layout)
    const c = this.capture
    const keyAt: number[] = []
    for (const k of verdict.keys) {
      if (k === null) { keyAt.push(-1); continue }
      let at = -1
      for (let i = 0; i < c.lits.length && at < 0; i++) if (c.value(i) === k) at = i
      if (at < 0) return { verdict, keyAt: null }
      keyAt.push(at)
    }
    return { verdict, keyAt }
  }

  /** Folds one statement's verdict into its digest: the worse class wins; equal classes pool their reasons and widest fan-out. */
  private merge(e: Entry, v: Verdict, sql: string): void {
    const now = CLASS_SEVERITY[v.class]
    const was = CLASS_SEVERITY[e.worst.class]
    if (now > was) {
      e.worst = v
      e.example = this.clip(sql)
      e.reasons = [...v.reasons]
      e.shards = v.maxShards
    } else if (now === was && v.class === e.worst.class) {
      for (const r of v.reasons) if (!e.reasons.includes(r)) e.reasons.push(r)
      if (v.maxShards !== null && (e.shards === null || v.maxShards > e.shards)) e.shards = v.maxShards
    }
  }

  /** Transaction bookkeeping: control statements, autocommit, and the key values of statements inside a transaction. */
  private follow(session: string, digest: string, sql: string, variant: Variant): void {
    const v = variant.verdict
    if (v.reasons.includes('transaction')) { this.recordTransaction(this.transactions.control(session, digest)); return }
    const ac = AUTOCOMMIT.exec(digest)
    if (ac) {
      const on = this.autocommitValue(ac[1]!)
      if (on !== null) this.recordTransaction(this.transactions.autocommit(session, on))
      return
    }
    if (!this.transactions.inTransaction(session)) return
    // inside a transaction the key values matter: read them from this statement's literals
    let exact: Classification = v
    if (variant.keyAt === null || this.capture.pattern() === null) exact = classifyStatement(sql, this.layout)
    else if (v.keys.length > 0) exact = { ...v, keys: variant.keyAt.map((at) => (at < 0 ? null : this.capture.value(at))) }
    const verb = digest.slice(0, digest.indexOf(' ') >>> 0)
    this.transactions.statement(session, digest, sql, exact, WRITE_VERBS.has(verb))
  }

  /** `SET autocommit = x`: true for on, false for off, null when the value is not a constant. */
  private autocommitValue(token: string): boolean | null {
    if (token === 'on') return true
    if (token === 'off') return false
    if (token !== '?') return null
    const lit = this.capture.lits[0] ?? ''
    if (lit === 'T' || lit === 'i1' || lit === 's1' || lit.toLowerCase() === 'son') return true
    if (lit === 'F' || lit === 'i0' || lit === 's0' || lit.toLowerCase() === 'soff') return false
    return null
  }

  private clip(sql: string): string {
    return sql.length > this.maxExample ? sql.slice(0, this.maxExample) + '...' : sql
  }

  private recordTransaction(tx: CrossTransaction | null): void {
    if (!tx) return
    let e = this.entries.get(tx.digest)
    if (!e) {
      if (this.entries.size >= this.maxDigests) { this.overflow++; return }
      const reasons = [...tx.reasons]
      const verdict: Verdict = { class: 'unsupported', dimension: 'user', keys: [], maxShards: null, reasons, suggestion: advise('unsupported', reasons, 'user'), merge: null, mergePlan: null, kind: 'write' }
      e = { example: this.clip(tx.example), count: 0, worst: verdict, reasons, shards: null, classes: {}, variants: new Map() }
      this.entries.set(tx.digest, e)
    }
    e.count++
    e.classes.unsupported = (e.classes.unsupported ?? 0) + 1
  }

  /** The report so far. */
  report(): LintReport {
    const digests: DigestReport[] = []
    const summary: LintReport['summary'] = {}
    for (const [digest, e] of this.entries) {
      const v = e.worst
      const suggestion = e.reasons.length === v.reasons.length ? v.suggestion : advise(v.class, e.reasons, v.dimension)
      digests.push({ digest, example: e.example, count: e.count, class: v.class, dimension: v.dimension, shards: e.shards, reasons: [...e.reasons], suggestion, merge: v.merge, ...(v.error ? { error: v.error } : {}), classes: { ...e.classes } })
    }
    digests.sort((a, b) => b.count - a.count || (a.digest < b.digest ? -1 : 1))
    for (const cls of SQL_CLASSES) {
      const rows = digests.filter((d) => d.class === cls)
      if (rows.length > 0) summary[cls] = { digests: rows.length, statements: rows.reduce((s, d) => s + d.count, 0) }
    }
    return { summary, digests, overflowStatements: this.overflow }
  }
}
