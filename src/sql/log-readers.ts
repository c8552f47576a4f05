/**
 * Reads statements from a `;`-separated SQL file, a MariaDB/MySQL general
 * log or slow log, or any stream (stdin), line by line with bounded memory:
 * one line and one statement at most are held, each capped.
 */
import type { Readable } from 'node:stream'
import { ShardkitError } from '../errors.js'
import { StatementSplitter } from './digest.js'

/** The input formats `shardctl sql lint` reads. */
export type LogFormat = 'sql' | 'general' | 'slow'

/** Options for {@link readStatements}. */
export interface ReadOptions {
  /** Longest statement accepted, in characters (default 256 KiB). */
  readonly maxStatementChars?: number
  /** Name shown in messages (the file path, or "stdin"). */
  readonly name: string
  /** Accept a general/slow log whose last line is cut off (default false). */
  readonly allowTruncated?: boolean
}

function inputError(message: string, name: string): ShardkitError {
  return new ShardkitError('SQL_INPUT_INVALID', message, { input: name })
}

/** Yields lines (without '\n'), refusing binary data and over-long lines; `truncated` is set when the input did not end with a newline. */
async function* lines(stream: Readable, maxChars: number, name: string, state: { truncated: boolean }): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let parts: Buffer[] = []
  let partLen = 0
  let lineNo = 0
  const emit = (buf: Buffer): string => {
    lineNo++
    if (buf.includes(0)) throw inputError(`${name} line ${lineNo} holds binary data (a NUL byte): this is not a SQL text or a MariaDB/MySQL log`, name)
    try {
      return decoder.decode(buf)
    } catch {
      throw inputError(`${name} line ${lineNo} is not valid UTF-8 text: this is not a SQL text or a MariaDB/MySQL log`, name)
    }
  }
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(10, start)
      if (nl < 0) break
      const piece = chunk.subarray(start, nl)
      if (partLen + piece.length > maxChars) throw tooLong(name, lineNo + 1, maxChars)
      const line = partLen === 0 ? piece : Buffer.concat([...parts, piece])
      parts = []
      partLen = 0
      yield emit(line.at(-1) === 13 ? line.subarray(0, line.length - 1) : line)
      start = nl + 1
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start)
      partLen += rest.length
      if (partLen > maxChars) throw tooLong(name, lineNo + 1, maxChars)
      parts.push(Buffer.from(rest))
    }
  }
  if (partLen > 0) {
    state.truncated = true
    yield emit(Buffer.concat(parts))
  }
}

function tooLong(name: string, line: number, max: number): ShardkitError {
  return new ShardkitError('SQL_INPUT_INVALID', `${name} line ${line} is longer than ${max} characters: raise --max-statement-bytes if one statement really is that long, or check that this is a text log`, { input: name, line })
}

/** A statement with the connection (thread id) that sent it, when the log says. */
export interface LoggedStatement {
  readonly sql: string
  readonly session: string | null
  /** Set (with an empty sql) when the log says the session disconnected. */
  readonly end?: boolean
}

/**
 * Streams the statements of `stream` in the given format.
 * @throws ShardkitError `SQL_INPUT_INVALID` on binary data, an over-long statement or (general/slow) a cut-off last line
 */
export async function* readStatements(stream: Readable, format: LogFormat, opts: ReadOptions): AsyncGenerator<LoggedStatement> {
  const max = opts.maxStatementChars ?? 256 * 1024
  const state = { truncated: false }
  const src = lines(stream, max, opts.name, state)
  if (format === 'sql') {
    const splitter = new StatementSplitter(max)
    try {
      for await (const line of src) for (const sql of splitter.feed(line + '\n')) yield { sql, session: null }
    } catch (err) {
      if (err instanceof RangeError) throw tooLong(opts.name, 0, max)
      throw err
    }
    for (const sql of splitter.end()) yield { sql, session: null }
    return
  }
  yield* format === 'general' ? generalLog(src, max, opts.name) : slowLog(src, max, opts.name)
  if (state.truncated && !opts.allowTruncated) {
    throw inputError(`${opts.name} ends in the middle of a line: the log looks truncated; copy it again, or pass --allow-truncated to lint what is there`, opts.name)
  }
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57

/** Parses a general-log entry head: `[time]\t<spaces><thread id> <Command>\t<argument>`; null for a continuation line. */
export function parseGeneralEntry(line: string): { session: string; command: string; argument: string } | null {
  let i = line.indexOf('\t')
  if (i < 0) return null
  const time = line.slice(0, i)
  // time is empty, "YYMMDD HH:MM:SS" (MariaDB) or an ISO-8601 stamp (MySQL 8)
  if (time.length > 0 && !(isDigit(time.charCodeAt(0)) && (time.includes(':') || time.includes('T')))) return null
  while (i < line.length && (line[i] === '\t' || line[i] === ' ')) i++
  const idStart = i
  while (i < line.length && isDigit(line.charCodeAt(i))) i++
  if (i === idStart || line[i] !== ' ') return null
  const session = line.slice(idStart, i)
  const tab = line.indexOf('\t', i + 1)
  const command = (tab < 0 ? line.slice(i + 1) : line.slice(i + 1, tab)).trim()
  if (command.length === 0 || command.includes(' ') && command !== 'Init DB') return null
  return { session, command, argument: tab < 0 ? '' : line.slice(tab + 1) }
}

const GENERAL_STATEMENTS = new Set(['Query', 'Execute'])

async function* generalLog(src: AsyncGenerator<string>, max: number, name: string): AsyncGenerator<LoggedStatement> {
  let current: { session: string; sql: string } | null = null
  let sawHeader = false
  for await (const line of src) {
    const entry = parseGeneralEntry(line)
    if (entry) {
      sawHeader = true
      if (current) yield current
      current = GENERAL_STATEMENTS.has(entry.command) ? { session: entry.session, sql: entry.argument } : null
      if (entry.command === 'Quit') yield { session: entry.session, sql: '', end: true }
    } else if (current) {
      if (current.sql.length + line.length + 1 > max) throw tooLong(name, 0, max)
      current.sql += '\n' + line
    } else if (!sawHeader && line.length > 0 && !isLogBanner(line)) {
      throw inputError(`${name} does not look like a general log (first line: "${line.slice(0, 60)}"); use --file for a ;-separated SQL file`, name)
    }
  }
  if (current) yield current
}

const isLogBanner = (line: string): boolean => line.includes(', Version: ') || line.startsWith('Tcp port:') || line.startsWith('Time ') || line.startsWith('Time\t')

async function* slowLog(src: AsyncGenerator<string>, max: number, name: string): AsyncGenerator<LoggedStatement> {
  let session: string | null = null
  let sql = ''
  let afterHeader = false
  let sawHeader = false
  for await (const line of src) {
    if (line.startsWith('# ')) {
      sawHeader = true
      afterHeader = true
      const t = line.indexOf('Thread_id: ')
      if (t >= 0) session = line.slice(t + 11).split(' ')[0] ?? null
      const c = line.indexOf('Id: ')
      if (line.startsWith('# User@Host:') && c >= 0) session = line.slice(c + 4).trim()
      continue
    }
    if (sql.length === 0 && (line.length === 0 || isLogBanner(line))) continue
    if (!sawHeader) throw inputError(`${name} does not look like a slow log (no "# Time:"/"# User@Host:" header before the first statement); use --file for a ;-separated SQL file`, name)
    // the server writes `use db;` and `SET timestamp=N;` before each statement: not the application's
    if (afterHeader && sql.length === 0 && (line.startsWith('SET timestamp=') || line.startsWith('use '))) continue
    afterHeader = false
    if (sql.length + line.length + 1 > max) throw tooLong(name, 0, max)
    sql = sql.length === 0 ? line : sql + '\n' + line
    if (line.endsWith(';')) {
      yield { sql: sql.slice(0, -1), session }
      sql = ''
    }
  }
  if (sql.trim().length > 0) yield { sql, session }
}
