/**
 * Row-level streams for the verifier's drill-down and re-checks: each table
 * read as (primary key, user, merchant, row hash) in primary-key order, in
 * keyset chunks, inside an optional key range; a dimension's 120 tables
 * merged into one stream in key order. At most one chunk per table is held.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { compareIds } from '../idgen/layout.js'

export interface Entry {
  readonly pk: string
  /** The key columns' values as read; null for NULL (such a row routes nowhere). */
  readonly user: string | null
  readonly merchant: string | null
  readonly hash: string
  /** The logical shard table it was read from (-1 for legacy). */
  readonly shard: number
}

/** A key range: `lo < pk <= hi`; null means unbounded. */
export interface KeyRange {
  readonly lo: string | null
  readonly hi: string | null
}

export function toEntry(r: RowDataPacket, shard: number): Entry {
  return { pk: String(r.pk), user: r.u === null ? null : String(r.u), merchant: r.m === null ? null : String(r.m), hash: String(r.h), shard }
}

/** A keyset-chunked stream of one table's entries inside a range. */
export class TableStream {
  private buf: Entry[] = []
  private i = 0
  private last: string | null
  private done = false
  /**
   * @param select `SELECT pk, u, m, h FROM t` (aliases pk, u, m, h); the stream adds WHERE, ORDER BY and LIMIT
   */
  constructor(
    private readonly pool: Pool,
    private readonly select: string,
    private readonly pkCol: string,
    private readonly shard: number,
    private readonly chunk: number,
    private readonly range: KeyRange = { lo: null, hi: null },
  ) {
    this.last = range.lo
  }

  get needsFill(): boolean {
    return this.i >= this.buf.length && !this.done
  }

  async fill(): Promise<void> {
    const conds: string[] = []
    const params: string[] = []
    if (this.last !== null) (conds.push(`${this.pkCol} > ?`), params.push(this.last))
    if (this.range.hi !== null) (conds.push(`${this.pkCol} <= ?`), params.push(this.range.hi))
    const sql = `${this.select}${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${this.pkCol} LIMIT ${this.chunk}`
    const [rows] = await this.pool.query<RowDataPacket[]>(sql, params)
    this.buf = rows.map((r) => toEntry(r, this.shard))
    this.i = 0
    if (rows.length < this.chunk) this.done = true
    if (this.buf.length > 0) this.last = this.buf[this.buf.length - 1]!.pk
  }

  current(): Entry | undefined {
    return this.buf[this.i]
  }

  next(): void {
    this.i++
  }
}

/** Merges several key-ordered streams into one key-ordered stream. */
export class MergedStream {
  constructor(private readonly streams: TableStream[]) {}

  private async ready(): Promise<void> {
    const pending = this.streams.filter((s) => s.needsFill)
    if (pending.length > 0) await Promise.all(pending.map((s) => s.fill()))
  }

  /** The smallest key among the streams' current entries. */
  async peekMin(): Promise<string | undefined> {
    await this.ready()
    let min: string | undefined
    for (const s of this.streams) {
      const h = s.current()
      if (h && (min === undefined || compareIds(h.pk, min) < 0)) min = h.pk
    }
    return min
  }

  /** Takes every current entry whose key is `key` (more than one when a row sits in two shards). */
  take(key: string): Entry[] {
    const out: Entry[] = []
    for (const s of this.streams) {
      const h = s.current()
      if (h && h.pk === key) {
        out.push(h)
        s.next()
      }
    }
    return out
  }
}
