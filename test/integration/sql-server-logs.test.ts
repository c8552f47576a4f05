/**
 * The catalogue statements run against a real legacy table on the local
 * MariaDB with the general log and the slow log (long_query_time=0) written
 * to this test's own directory, then read back and linted: the statements
 * and their classes must come out as sent. Server settings are restored in
 * `finally` (other test files share the server, so the window is short).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, createReadStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { SqlLinter } from '../../src/sql/linter.js'
import { readStatements, type LogFormat } from '../../src/sql/log-readers.js'
import { layoutOf } from '../../src/sql/planner.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix } from '../support/db.js'

interface Case { sql: string; class: string; reasons?: string[] }
const prefix = testPrefix('sqllogs')
let config: ShardkitConfig
let dir: string
let cases: Case[]
let thread: string
const succeeded = new Set<string>()
const SETTINGS = ['general_log', 'general_log_file', 'log_output', 'slow_query_log', 'slow_query_log_file', 'long_query_time'] as const

async function read(path: string, format: LogFormat): Promise<{ sql: string; session: string | null; end?: boolean }[]> {
  const out = []
  for await (const s of readStatements(createReadStream(path), format, { name: path })) out.push(s)
  return out
}

beforeAll(async () => {
  config = testFleetConfig({ prefix })
  await createLegacyTable(config)
  const db = config.legacy.database
  const raw = JSON.parse(readFileSync(new URL('../fixtures/sql/catalogue.json', import.meta.url), 'utf8')) as Case[]
  cases = [...raw.map((c) => ({ ...c, sql: c.sql.replace('LEGACYDB.', `${db}.`) })), { sql: 'SELECT *\nFROM orders\nWHERE user_id = 5', class: 'user' }]
  dir = mkdtempSync(join(tmpdir(), 'shardkit-sql-logs-'))
  // mariadbd runs as its own user and must be able to create the log files here
  chmodSync(dir, 0o777)
  const admin = adminPool()
  const [[before]] = (await admin.query(`SELECT ${SETTINGS.map((s) => `@@GLOBAL.${s} AS ${s}`).join(', ')}`)) as unknown as [Record<string, string | number>[]]
  try {
    await admin.query('SET GLOBAL log_output = ?', ['FILE'])
    await admin.query('SET GLOBAL general_log_file = ?', [join(dir, 'general.log')])
    await admin.query('SET GLOBAL slow_query_log_file = ?', [join(dir, 'slow.log')])
    await admin.query('SET GLOBAL long_query_time = 0')
    await admin.query('SET GLOBAL general_log = 1')
    await admin.query('SET GLOBAL slow_query_log = 1')
    const url = new URL(testMysqlUrl())
    url.pathname = `/${db}`
    const conn = await mysql.createConnection({ uri: url.toString(), multipleStatements: false })
    try {
      const [[row]] = (await conn.query('SELECT CONNECTION_ID() AS id')) as unknown as [{ id: number }[]]
      thread = String(row!.id)
      for (const c of cases) await conn.query(c.sql).then(() => succeeded.add(c.sql), () => undefined)
    } finally {
      await conn.end()
    }
  } finally {
    // logging off first, then the previous files and thresholds, then the previous on/off
    await admin.query('SET GLOBAL general_log = 0')
    await admin.query('SET GLOBAL slow_query_log = 0')
    await admin.query('SET GLOBAL general_log_file = ?', [before!.general_log_file])
    await admin.query('SET GLOBAL slow_query_log_file = ?', [before!.slow_query_log_file])
    await admin.query('SET GLOBAL long_query_time = ?', [Number(before!.long_query_time)])
    await admin.query('SET GLOBAL log_output = ?', [before!.log_output])
    await admin.query(`SET GLOBAL general_log = ${Number(before!.general_log) ? 1 : 0}`)
    await admin.query(`SET GLOBAL slow_query_log = ${Number(before!.slow_query_log) ? 1 : 0}`)
    await admin.end()
  }
})

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true })
  await dropPrefixedDatabases(prefix)
})

describe('statements read back from MariaDB logs', () => {
  it('the general log gives back every statement of our connection, and each lints to its expected class', async () => {
    const ours = (await read(join(dir, 'general.log'), 'general')).filter((s) => s.session === thread && !s.end)
    expect(ours.map((s) => s.sql)).toEqual(['SELECT CONNECTION_ID() AS id', ...cases.map((c) => c.sql)])
    const linter = new SqlLinter(layoutOf(config), { idCeiling: config.legacy.idCeiling })
    for (const [i, c] of cases.entries()) {
      const one = new SqlLinter(layoutOf(config))
      one.add(ours[i + 1]!.sql)
      const d = one.report().digests[0]!
      expect({ sql: c.sql, class: d.class, reasons: [...d.reasons].sort() }).toEqual({ sql: c.sql, class: c.class, reasons: [...(c.reasons ?? [])].sort() })
      linter.add(ours[i + 1]!.sql, thread)
    }
    expect(linter.statements).toBe(cases.length)
  })

  it('the slow log (long_query_time=0) gives back the statements the server ran, each linting as expected', async () => {
    const ours = (await read(join(dir, 'slow.log'), 'slow')).filter((s) => s.session === thread)
    const expected = new Map(cases.map((c) => [c.sql, c]))
    const found = ours.filter((s) => expected.has(s.sql))
    // MariaDB also logs statements that failed; every one it ran must be there
    expect(succeeded.size).toBeGreaterThan(50)
    const foundSet = new Set(found.map((s) => s.sql))
    for (const sql of succeeded) expect(foundSet, sql).toContain(sql)
    for (const s of found) {
      const one = new SqlLinter(layoutOf(config))
      one.add(s.sql)
      expect([s.sql, one.report().digests[0]!.class]).toEqual([s.sql, expected.get(s.sql)!.class])
    }
  })
})
