import { describe, expect, it } from 'vitest'
import {
  addColumnAlgorithm,
  boundedSelect,
  collationFor,
  configuredDialect,
  familyOf,
  instantAddColumn,
  isStatementTimeout,
  jsonStorage,
  parseServerVersion,
  shareLockClause,
  supportsNowait,
  updateLockClause,
  upsertRowAlias,
  upsertValueRef,
  type Dialect,
} from '../../src/runtime/dialect.js'
import { isShardkitError } from '../../src/errors.js'

const mariadb = parseServerVersion('10.11.19-MariaDB-0+deb12u1', 'Debian 12')
const mysql8 = parseServerVersion('8.0.36', 'MySQL Community Server - GPL')
const mysql8019 = parseServerVersion('8.0.19', 'MySQL Community Server - GPL')
const mysql57 = parseServerVersion('5.7.44-log', 'MySQL Community Server (GPL)')

describe('dialect seam: which server speaks what', () => {
  it('reads the flavour from VERSION() and @@version_comment, not from a handshake string', () => {
    expect(mariadb).toEqual({ name: 'mariadb', version: [10, 11, 19], source: 'detected' })
    // A MariaDB whose VERSION() was rewritten (by a proxy, or --version) still says so in its comment.
    expect(parseServerVersion('5.5.5-10.6.12', 'mariadb.org binary distribution').name).toBe('mariadb')
    expect(mysql8.name).toBe('mysql8')
    expect(parseServerVersion('8.4.3', 'MySQL Community Server - GPL').name).toBe('mysql8')
    expect(parseServerVersion('8.0.36-28', 'Percona Server (GPL), Release 28').name).toBe('mysql8')
    expect(mysql57.name).toBe('mysql57')
    expect(familyOf(mariadb)).toBe('mariadb')
    expect(familyOf(mysql57)).toBe('mysql')
  })

  it('refuses servers older than it supports, and a version it cannot read, saying what to do', () => {
    for (const [v, c, want] of [
      ['5.6.51', 'MySQL Community Server (GPL)', /older than 5\.7/],
      ['10.2.44-MariaDB', '', /older than 10\.3/],
      ['proxysql', '', /set "dialect" in the config/],
    ] as const) {
      let err: unknown
      try {
        parseServerVersion(v, c)
      } catch (e) {
        err = e
      }
      expect(isShardkitError(err, 'DIALECT_UNSUPPORTED'), v).toBe(true)
      expect((err as Error).message).toMatch(want)
    }
  })

  it('bounds a SELECT on the server with the dialect\'s own syntax (the MariaDB form is not a comment there)', () => {
    expect(boundedSelect(mariadb, 'SELECT a FROM t WHERE b = ?', 1500)).toBe('SET STATEMENT max_statement_time=1.500 FOR SELECT a FROM t WHERE b = ?')
    expect(boundedSelect(mysql8, 'SELECT a FROM t WHERE b = ?', 1500)).toBe('SELECT /*+ MAX_EXECUTION_TIME(1500) */ a FROM t WHERE b = ?')
    expect(boundedSelect(mysql57, 'SELECT a FROM t', 0.4)).toBe('SELECT /*+ MAX_EXECUTION_TIME(1) */ a FROM t')
    expect(() => boundedSelect(mysql8, 'UPDATE t SET a = 1', 10)).toThrow(/SELECT/)
    expect(isStatementTimeout({ errno: 1969 })).toBe(true)
    expect(isStatementTimeout({ errno: 3024 })).toBe(true)
    expect(isStatementTimeout({ errno: 1205 })).toBe(false)
  })

  it('writes the shared-lock clause with and without NOWAIT', () => {
    expect(shareLockClause(mariadb)).toBe(' LOCK IN SHARE MODE')
    expect(shareLockClause(mariadb, { nowait: true })).toBe(' LOCK IN SHARE MODE NOWAIT')
    expect(shareLockClause(mysql8)).toBe(' FOR SHARE')
    expect(shareLockClause(mysql8, { nowait: true })).toBe(' FOR SHARE NOWAIT')
    expect(shareLockClause(mysql57)).toBe(' LOCK IN SHARE MODE')
    expect(supportsNowait(mysql57)).toBe(false)
    expect(() => shareLockClause(mysql57, { nowait: true })).toThrow(/no NOWAIT/)
    expect(updateLockClause(mysql8, { nowait: true })).toBe(' FOR UPDATE NOWAIT')
    expect(updateLockClause(mysql57)).toBe(' FOR UPDATE')
  })

  it('refers to an upsert\'s incoming values by VALUES() or by the row alias from MySQL 8.0.20', () => {
    for (const d of [mariadb, mysql57, mysql8019]) {
      expect(upsertRowAlias(d)).toBe('')
      expect(upsertValueRef(d, 'note')).toBe('VALUES(`note`)')
    }
    expect(upsertRowAlias(mysql8)).toBe(' AS new')
    expect(upsertValueRef(mysql8, 'note')).toBe('`new`.`note`')
    const sql = `INSERT INTO t (a, note) VALUES (?, ?)${upsertRowAlias(mysql8)} ON DUPLICATE KEY UPDATE note = ${upsertValueRef(mysql8, 'note')}`
    expect(sql).toBe('INSERT INTO t (a, note) VALUES (?, ?) AS new ON DUPLICATE KEY UPDATE note = `new`.`note`')
  })

  it('says where ADD COLUMN is instant and how JSON is stored', () => {
    expect(instantAddColumn(mariadb)).toBe(true)
    expect(instantAddColumn(parseServerVersion('10.3.1-MariaDB', ''))).toBe(false)
    expect(instantAddColumn(mysql8)).toBe(true)
    expect(instantAddColumn(parseServerVersion('8.0.11', ''))).toBe(false)
    expect(instantAddColumn(mysql57)).toBe(false)
    expect(addColumnAlgorithm(mariadb)).toBe(', ALGORITHM=INSTANT')
    expect(addColumnAlgorithm(mysql57)).toBe(', ALGORITHM=INPLACE, LOCK=NONE')
    expect(jsonStorage(mariadb)).toBe('text-as-written')
    expect(jsonStorage(mysql8)).toBe('normalized')
  })

  it('translates collations the target server lacks', () => {
    expect(collationFor(mariadb, 'utf8mb4_0900_ai_ci')).toBe('utf8mb4_uca1400_ai_ci')
    expect(collationFor(mariadb, 'utf8mb4_0900_bin')).toBe('utf8mb4_bin')
    expect(collationFor(parseServerVersion('10.6.16-MariaDB', ''), 'utf8mb4_0900_ai_ci')).toBe('utf8mb4_unicode_520_ci')
    expect(collationFor(mariadb, 'utf8mb4_unicode_ci')).toBe('utf8mb4_unicode_ci')
    expect(collationFor(mysql8, 'utf8mb4_uca1400_ai_ci')).toBe('utf8mb4_0900_ai_ci')
    expect(collationFor(mysql8, 'utf8mb4_uca1400_nopad_as_cs')).toBe('utf8mb4_0900_as_cs')
    expect(collationFor(mysql57, 'utf8mb4_0900_ai_ci')).toBe('utf8mb4_unicode_520_ci')
    expect(collationFor(mysql8, 'utf8mb4_0900_ai_ci')).toBe('utf8mb4_0900_ai_ci')
  })

  it('takes a dialect named in the config at the baseline of its name', () => {
    const d: Dialect = configuredDialect('mysql8')
    expect(d).toEqual({ name: 'mysql8', version: [8, 0, 20], source: 'config' })
    expect(upsertRowAlias(d)).toBe(' AS new')
    expect(supportsNowait(configuredDialect('mariadb'))).toBe(true)
  })
})
