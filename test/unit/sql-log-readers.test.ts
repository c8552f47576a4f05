/**
 * Log formats parsed from in-memory streams: general log entries and
 * continuation lines, slow log headers, ;-files, and refusals of bad input.
 */
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { parseGeneralEntry, readStatements, type LogFormat } from '../../src/sql/log-readers.js'

async function collect(text: string | Buffer, format: LogFormat, opts: { maxStatementChars?: number; allowTruncated?: boolean } = {}): Promise<{ sql: string; session: string | null; end?: boolean }[]> {
  const out = []
  for await (const s of readStatements(Readable.from([Buffer.from(text)]), format, { name: 'input', ...opts })) out.push(s)
  return out
}

const GENERAL = `/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-0+deb12u1-log (Debian 12). started with:
Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock
Time\t\t    Id Command\tArgument
251125  3:10:01\t     5 Connect\troot@localhost on shop using TCP/IP
\t\t     5 Query\tSELECT * FROM orders
WHERE user_id = 5
\t\t     5 Query\tBEGIN
2025-11-25T03:10:02.123456Z\t   12 Execute\tSELECT 1
\t\t     5 Quit\t
`

describe('general log', () => {
  it('reads Query and Execute entries with their thread, joins continuation lines, reports Quit', async () => {
    expect(await collect(GENERAL, 'general')).toEqual([
      { session: '5', sql: 'SELECT * FROM orders\nWHERE user_id = 5' },
      { session: '5', sql: 'BEGIN' },
      { session: '12', sql: 'SELECT 1' },
      { session: '5', sql: '', end: true },
    ])
  })

  it('parses entry heads and rejects continuation lines', () => {
    expect(parseGeneralEntry('\t\t    42 Query\tSELECT 1')).toEqual({ session: '42', command: 'Query', argument: 'SELECT 1' })
    expect(parseGeneralEntry('WHERE a = 1')).toBeNull()
    expect(parseGeneralEntry('  AND b\t= 2')).toBeNull()
  })

  it('refuses a truncated log unless told, and a file that is not a log', async () => {
    const cut = GENERAL + '\t\t     7 Query\tSELECT * FROM ord'
    await expect(collect(cut, 'general')).rejects.toThrow(/truncated/)
    expect((await collect(cut, 'general', { allowTruncated: true })).at(-1)).toEqual({ session: '7', sql: 'SELECT * FROM ord' })
    await expect(collect('SELECT 1;\n', 'general')).rejects.toThrow(/does not look like a general log/)
  })
})

describe('slow log', () => {
  it('skips headers, use and SET timestamp, and joins multi-line statements', async () => {
    const slow = `/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-log. started with:
Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock
Time                Id Command  Argument
# Time: 251125  3:10:01
# User@Host: root[root] @ localhost [127.0.0.1]
# Thread_id: 31  Schema: shop  QC_hit: No
# Query_time: 0.000120  Lock_time: 0.000010  Rows_sent: 1  Rows_examined: 1
# Rows_affected: 0  Bytes_sent: 90
use shop;
SET timestamp=1764040201;
SELECT *
FROM orders WHERE user_id = 5;
# Time: 251125  3:10:02
# User@Host: root[root] @ localhost [127.0.0.1]
# Thread_id: 31  Schema: shop  QC_hit: No
SET timestamp=1764040202;
SET autocommit = 1;
`
    expect(await collect(slow, 'slow')).toEqual([
      { session: '31', sql: 'SELECT *\nFROM orders WHERE user_id = 5' },
      { session: '31', sql: 'SET autocommit = 1' },
    ])
  })
})

describe('bad input', () => {
  it('binary data, invalid UTF-8 and over-long statements are refused with the line number', async () => {
    await expect(collect(Buffer.from([0x53, 0x45, 0x00, 0x01, 0x0a]), 'sql')).rejects.toThrow(/line 1 holds binary data/)
    await expect(collect(Buffer.from([0xff, 0xfe, 0x41, 0x0a]), 'sql')).rejects.toThrow(/not valid UTF-8/)
    await expect(collect('SELECT ' + 'x'.repeat(5000) + ';', 'sql', { maxStatementChars: 1024 })).rejects.toThrow(/longer than 1024/)
    await expect(collect('SELECT 1;\nSELECT ' + 'x, '.repeat(2000) + '1\n;', 'sql', { maxStatementChars: 1024 })).rejects.toThrow(/longer than 1024/)
  })

  it('a ;-file without a trailing ; or newline still yields its last statement', async () => {
    expect((await collect('SELECT 1;\nSELECT 2', 'sql')).map((s) => s.sql)).toEqual(['SELECT 1', 'SELECT 2'])
  })
})
