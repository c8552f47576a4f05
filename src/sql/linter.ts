/**
 * Groups statements by digest and classifies each digest once: a repeated
 * statement costs a tokenizer pass and a map lookup, not a parse. The number
 * of distinct digests kept is bounded; the rest are counted as overflow.
 */
import { classifyAst, SQL_CLASSES, type Classification, type SqlClass, type SqlLayout, type KeyDimension } from './classify.js'
import { digestOf } from './digest.js'
import { parseStatement } from './parse.js'
import { advise, type Reason } from './reasons.js'
import { TransactionTracker } from './transactions.js'
import { LOGICAL_SHARDS } from '../router/shard-function.js'

/** One row of the lint report (the issue's `--json` shape). */
export interface DigestReport {
  readonly digest: string
  readonly example: string
  readonly count: number
  readonly class: SqlClass
  readonly dimension: KeyDimension | null
  readonly shards: number | null
  readonly reasons: readonly string[]
  readonly suggestion: string
  /** The parser's message, for `unparsed`. */
  readonly error?: string
  readonly merge?: string | null
}

/** The lint report: per-class totals and the digests sorted by count, most frequent first. */
export interface LintReport {
  readonly summary: Partial<Record<SqlClass, { digests: number; statements: number }>>
  readonly digests: readonly DigestReport[]
  /** Statements whose digest arrived after the digest limit was reached. */
  readonly overflowStatements: number
}

interface Entry {
  example: string
  count: number
  shards: number | null
  verdict: Classification
  error?: string
}

/** Options for {@link SqlLinter}. */
export interface SqlLinterOptions {
  /** Distinct digests kept (default 100,000). */
  readonly maxDigests?: number
  /** Characters of an example kept (default 2,000). */
  readonly maxExample?: number
  /** The legacy id ceiling, to tell which shard an order id reaches inside a transaction (default: every id is new). */
  readonly idCeiling?: string
}

/** Classifies one statement text (parse + classify); unparsed statements carry the parser's message. */
export function classifyStatement(sql: string, layout: SqlLayout): Classification & { error?: string } {
  const parsed = parseStatement(sql)
  if (!parsed.ok) {
    return { class: 'unparsed', dimension: null, keys: [], maxShards: null, reasons: ['parse-error'], suggestion: 'the parser rejected it: check the syntax, or review this statement by hand', merge: null, kind: 'other', error: parsed.message }
  }
  return classifyAst(parsed.ast, layout)
}

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
  private readonly transactions: TransactionTracker

  constructor(private readonly layout: SqlLayout, opts: SqlLinterOptions = {}) {
    this.maxDigests = opts.maxDigests ?? 100_000
    this.maxExample = opts.maxExample ?? 2_000
    this.transactions = new TransactionTracker(opts.idCeiling ?? '0')
  }

  /** Statements seen so far. */
  get statements(): number {
    return this.total
  }

  /** Adds one statement; `session` (a log's thread id) lets transactions be followed. */
  add(sql: string, session = '-'): void {
    this.total++
    const d = digestOf(sql)
    let e = this.entries.get(d.text)
    if (!e) {
      if (this.entries.size >= this.maxDigests) { this.overflow++; return }
      const verdict = classifyStatement(sql, this.layout)
      e = { example: this.clip(sql), count: 0, shards: verdict.maxShards, verdict, error: (verdict as { error?: string }).error }
      this.entries.set(d.text, e)
    }
    e.count++
    if (e.verdict.reasons.includes('transaction')) this.recordTransaction(this.transactions.control(session, d.text))
    else if (this.transactions.inTransaction(session)) {
      // inside a transaction the key values matter, so this statement is parsed
      this.transactions.statement(session, d.text, sql, classifyStatement(sql, this.layout))
    }
    // A folded IN list of k keys reaches at most k shards: keep the largest seen.
    if (e.verdict.class === 'multi' && d.longestList > 0) e.shards = Math.max(e.shards ?? 0, Math.min(d.longestList, LOGICAL_SHARDS))
  }

  /** Ends a session (a general log's Quit): an open transaction is judged as it stands. */
  endSession(session: string): void {
    this.recordTransaction(this.transactions.finish(session))
  }

  private clip(sql: string): string {
    return sql.length > this.maxExample ? sql.slice(0, this.maxExample) + '...' : sql
  }

  private recordTransaction(tx: { digest: string; example: string } | null): void {
    if (!tx) return
    let e = this.entries.get(tx.digest)
    if (!e) {
      if (this.entries.size >= this.maxDigests) { this.overflow++; return }
      const reasons: Reason[] = ['transaction-across-shard-keys']
      const verdict: Classification = { class: 'unsupported', dimension: 'user', keys: [], maxShards: null, reasons, suggestion: advise('unsupported', reasons, 'user'), merge: null, kind: 'write' }
      e = { example: this.clip(tx.example), count: 0, shards: null, verdict }
      this.entries.set(tx.digest, e)
    }
    e.count++
  }

  /** The report so far. */
  report(): LintReport {
    const digests: DigestReport[] = []
    const summary: LintReport['summary'] = {}
    for (const [digest, e] of this.entries) {
      const v = e.verdict
      digests.push({ digest, example: e.example, count: e.count, class: v.class, dimension: v.dimension, shards: e.shards, reasons: [...v.reasons] as Reason[], suggestion: v.suggestion, merge: v.merge, ...(e.error ? { error: e.error } : {}) })
    }
    digests.sort((a, b) => b.count - a.count || (a.digest < b.digest ? -1 : 1))
    for (const cls of SQL_CLASSES) {
      const rows = digests.filter((d) => d.class === cls)
      if (rows.length > 0) summary[cls] = { digests: rows.length, statements: rows.reduce((s, d) => s + d.count, 0) }
    }
    return { summary, digests, overflowStatements: this.overflow }
  }
}
