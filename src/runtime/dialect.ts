/**
 * The dialect seam: the one place that says which server speaks what SQL.
 * Everything that differs between MariaDB, MySQL 8 and MySQL 5.7 is a pure
 * function of a {@link Dialect} here, unit-tested as SQL text; callers never
 * test a version string themselves.
 *
 * A pool's dialect is read once from `SELECT VERSION(), @@version_comment`
 * (what the server itself says, not the handshake string, which proxies such
 * as ProxySQL rewrite), unless the config names it (`dialect`), and cached
 * per pool. Only MariaDB 10.11 is tested against a live server in this
 * repository; the MySQL branches are tested as text (see the README).
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import { quoteIdent } from './mysql.js'

/** The dialects a config may name; `auto` reads the server. */
export const DIALECT_NAMES = ['auto', 'mariadb', 'mysql8', 'mysql57'] as const
export type DialectSetting = (typeof DIALECT_NAMES)[number]

/** What a server speaks. */
export interface Dialect {
  readonly name: 'mariadb' | 'mysql8' | 'mysql57'
  /** `[major, minor, patch]` as the server reported it (or the name's baseline when set in the config). */
  readonly version: readonly [number, number, number]
  readonly source: 'detected' | 'config'
}

/** The baseline assumed when the config names a dialect instead of reading the server. */
const CONFIGURED: Record<Dialect['name'], Dialect['version']> = { mariadb: [10, 6, 0], mysql8: [8, 0, 20], mysql57: [5, 7, 8] }

/** A dialect named in the config, without asking the server. */
export function configuredDialect(name: Dialect['name']): Dialect {
  return { name, version: CONFIGURED[name], source: 'config' }
}

function atLeast(d: Dialect, major: number, minor: number, patch = 0): boolean {
  const [a, b, c] = d.version
  return a !== major ? a > major : b !== minor ? b > minor : c >= patch
}

/**
 * The dialect of a server from what it says about itself (pure).
 * `VERSION()` is `10.11.6-MariaDB-0+deb12u1` on MariaDB (its `@@version_comment`
 * is often only the distribution, `Debian 12`), `8.0.36` on MySQL.
 * @throws ShardkitError `DIALECT_UNSUPPORTED` for servers older than MariaDB 10.3 or MySQL 5.7
 */
export function parseServerVersion(version: string, comment: string): Dialect {
  // MariaDB may prefix its version with `5.5.5-` for old replication clients.
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(version.replace(/^5\.5\.5-(?=\d+\.\d+\.\d+)/, ''))
  if (!m) throw unsupported(`the server's VERSION() is "${version.slice(0, 60)}", which names no version; set "dialect" in the config (mariadb, mysql8 or mysql57)`)
  const v = [Number(m[1]), Number(m[2]), Number(m[3])] as const
  const maria = /mariadb/i.test(version) || /mariadb/i.test(comment)
  const d: Dialect = { name: maria ? 'mariadb' : v[0] >= 8 ? 'mysql8' : 'mysql57', version: v, source: 'detected' }
  if (maria && !atLeast(d, 10, 3)) throw unsupported(`MariaDB ${v.join('.')} is older than 10.3, the oldest shardkit supports; upgrade the server`)
  if (!maria && !atLeast(d, 5, 7)) throw unsupported(`MySQL ${v.join('.')} is older than 5.7, the oldest shardkit supports; upgrade the server`)
  return d
}

function unsupported(message: string): ShardkitError {
  return new ShardkitError('DIALECT_UNSUPPORTED', message, {})
}

/** The server family: what decides how JSON is stored and which collations exist. */
export function familyOf(d: Dialect): 'mariadb' | 'mysql' {
  return d.name === 'mariadb' ? 'mariadb' : 'mysql'
}

/** A human name: `MariaDB 10.11.6`, `MySQL 8.0.36`. */
export function describeDialect(d: Dialect): string {
  return `${d.name === 'mariadb' ? 'MariaDB' : 'MySQL'} ${d.version.join('.')}${d.source === 'config' ? ' (set in the config)' : ''}`
}

// ---------------------------------------------------------------- statements

/**
 * `sql` (a SELECT) bounded on the server to `timeoutMs`: MariaDB's
 * `SET STATEMENT max_statement_time=<s> FOR`, MySQL's `MAX_EXECUTION_TIME`
 * optimizer hint (5.7.8+; MariaDB before 12 treats the hint as a comment,
 * so it must never get it).
 * @example boundedSelect(mysql8, 'SELECT 1', 1500) // 'SELECT /*+ MAX_EXECUTION_TIME(1500) *\/ 1'
 */
export function boundedSelect(d: Dialect, sql: string, timeoutMs: number): string {
  if (!/^SELECT /.test(sql)) throw new ShardkitError('INTERNAL', 'boundedSelect takes a statement that starts with "SELECT "', {})
  if (d.name === 'mariadb') return `SET STATEMENT max_statement_time=${(Math.max(1, timeoutMs) / 1000).toFixed(3)} FOR ${sql}`
  return sql.replace(/^SELECT /, `SELECT /*+ MAX_EXECUTION_TIME(${Math.max(1, Math.ceil(timeoutMs))}) */ `)
}

/** True for the server's own statement-time errors (MariaDB 1969, MySQL 3024). */
export function isStatementTimeout(err: unknown): boolean {
  const e = err as { errno?: unknown; code?: unknown }
  return e?.errno === 1969 || e?.errno === 3024 || e?.code === 'ER_STATEMENT_TIMEOUT' || e?.code === 'ER_QUERY_TIMEOUT'
}

/** True when the dialect can refuse to wait for a row lock (`NOWAIT`): MariaDB 10.3+, MySQL 8. */
export function supportsNowait(d: Dialect): boolean {
  return d.name !== 'mysql57'
}

/**
 * The shared-lock clause appended to a SELECT, with a leading space:
 * ` LOCK IN SHARE MODE [NOWAIT]` on MariaDB, ` FOR SHARE [NOWAIT]` on MySQL 8,
 * ` LOCK IN SHARE MODE` on MySQL 5.7, which has no NOWAIT.
 * @throws ShardkitError `DIALECT_UNSUPPORTED` when `nowait` is asked of MySQL 5.7 (check {@link supportsNowait})
 */
export function shareLockClause(d: Dialect, o: { nowait?: boolean } = {}): string {
  if (o.nowait && !supportsNowait(d)) throw unsupported(`${describeDialect(d)} has no NOWAIT for shared locks; it needs MySQL 8 or MariaDB 10.3`)
  const base = d.name === 'mysql8' ? ' FOR SHARE' : ' LOCK IN SHARE MODE'
  return o.nowait ? `${base} NOWAIT` : base
}

/** The exclusive-lock clause: ` FOR UPDATE [NOWAIT]` everywhere NOWAIT exists. */
export function updateLockClause(d: Dialect, o: { nowait?: boolean } = {}): string {
  if (o.nowait && !supportsNowait(d)) throw unsupported(`${describeDialect(d)} has no NOWAIT for row locks; it needs MySQL 8 or MariaDB 10.3`)
  return o.nowait ? ' FOR UPDATE NOWAIT' : ' FOR UPDATE'
}

/** The row alias of an upsert (`AS new`), on servers that deprecate `VALUES(col)`. */
export const UPSERT_ALIAS = 'new'

/** True on MySQL 8.0.20+, where `VALUES(col)` in `ON DUPLICATE KEY UPDATE` is deprecated (warning 1287). */
export function usesUpsertAlias(d: Dialect): boolean {
  return d.name === 'mysql8' && atLeast(d, 8, 0, 20)
}

/**
 * What goes between `INSERT ... VALUES (...)` and `ON DUPLICATE KEY UPDATE`,
 * with a leading space: ` AS new` on MySQL 8.0.20+, nothing elsewhere. (For
 * `INSERT ... SELECT`, MySQL reads the row alias from a derived table instead:
 * `SELECT * FROM (SELECT ? AS a, ...) AS new WHERE ...`.)
 */
export function upsertRowAlias(d: Dialect): string {
  return usesUpsertAlias(d) ? ` AS ${UPSERT_ALIAS}` : ''
}

/** The incoming value of `column` inside `ON DUPLICATE KEY UPDATE`: `VALUES(\`c\`)` or `` `new`.`c` ``. */
export function upsertValueRef(d: Dialect, column: string): string {
  return usesUpsertAlias(d) ? `${quoteIdent(UPSERT_ALIAS)}.${quoteIdent(column)}` : `VALUES(${quoteIdent(column)})`
}

/** The session variable holding the isolation level (`tx_isolation` was removed in MySQL 8). */
export function isolationVariable(d: Dialect): string {
  if (d.name === 'mariadb') return atLeast(d, 11, 1) ? '@@SESSION.transaction_isolation' : '@@SESSION.tx_isolation'
  return atLeast(d, 5, 7, 20) ? '@@SESSION.transaction_isolation' : '@@SESSION.tx_isolation'
}

// ---------------------------------------------------------------- DDL and storage

/** How the server keeps JSON: MariaDB keeps the text as written, MySQL a normalized binary form. */
export function jsonStorage(d: Dialect): 'text-as-written' | 'normalized' {
  return d.name === 'mariadb' ? 'text-as-written' : 'normalized'
}

/**
 * Whether `ADD COLUMN` at the end of a table is instant (no table copy): MariaDB
 * 10.3.2+, MySQL 8.0.12+ (any position from 8.0.29). MySQL 5.7 rebuilds the table
 * online (`ALGORITHM=INPLACE, LOCK=NONE`).
 */
export function instantAddColumn(d: Dialect): boolean {
  return d.name === 'mariadb' ? atLeast(d, 10, 3, 2) : atLeast(d, 8, 0, 12)
}

/** The algorithm clause for an ADD COLUMN, with a leading comma: refuses to copy where it could be instant. */
export function addColumnAlgorithm(d: Dialect): string {
  return instantAddColumn(d) ? ', ALGORITHM=INSTANT' : ', ALGORITHM=INPLACE, LOCK=NONE'
}

/** MySQL 8's `utf8mb4_0900_*` collations and what MariaDB calls them (10.10+ has UCA 14.0.0). */
const MYSQL_TO_MARIADB: Readonly<Record<string, string>> = {
  utf8mb4_0900_ai_ci: 'utf8mb4_uca1400_ai_ci',
  utf8mb4_0900_as_ci: 'utf8mb4_uca1400_as_ci',
  utf8mb4_0900_as_cs: 'utf8mb4_uca1400_as_cs',
  utf8mb4_0900_bin: 'utf8mb4_bin',
}

/**
 * The collation to use on `target` for a column or table collated `collation`
 * on another server: MySQL 8's `utf8mb4_0900_*` become MariaDB's UCA 14
 * collations (10.10+; `utf8mb4_unicode_520_ci` before, which sorts a few
 * characters differently) and back; MySQL 5.7 gets `utf8mb4_unicode_520_ci`
 * for either. Unchanged when the target has it. Stored bytes never change;
 * only comparison and sort order may.
 */
export function collationFor(target: Dialect, collation: string): string {
  const c = collation.toLowerCase()
  if (target.name === 'mariadb') {
    const m = MYSQL_TO_MARIADB[c]
    if (!m) return collation
    return atLeast(target, 10, 10) || m === 'utf8mb4_bin' ? m : 'utf8mb4_unicode_520_ci'
  }
  const uca = /^utf8mb4_uca1400_(nopad_)?(ai_ci|as_ci|as_cs)$/.exec(c)
  if (uca) return target.name === 'mysql8' ? `utf8mb4_0900_${uca[2]}` : 'utf8mb4_unicode_520_ci'
  if (target.name === 'mysql57' && c.startsWith('utf8mb4_0900_')) return c === 'utf8mb4_0900_bin' ? 'utf8mb4_bin' : 'utf8mb4_unicode_520_ci'
  return collation
}

// ---------------------------------------------------------------- per pool

/** What a server is asked to learn its dialect. */
export const VERSION_SQL = 'SELECT VERSION() AS v, @@version_comment AS c'

const cache = new WeakMap<Pool, Promise<Dialect>>()
const configured = new WeakMap<Pool, Dialect['name']>()

/** Records the config's dialect for a pool (the runtime calls it when it opens the pool). */
export function setPoolDialect(pool: Pool, setting: DialectSetting | undefined): void {
  if (setting && setting !== 'auto') configured.set(pool, setting)
}

/**
 * The dialect of the server behind `pool`: the config's, or read once from
 * the server and cached (a failed read is not cached).
 * @param via a connection of `pool` to ask on (a caller holding one need not wait for another)
 * @throws ShardkitError `DIALECT_UNSUPPORTED` for a server too old; the driver's error when it cannot connect
 */
export function dialectOf(pool: Pool, via?: Pick<Pool, 'query'>): Promise<Dialect> {
  let p = cache.get(pool)
  if (!p) {
    const name = configured.get(pool)
    p = name
      ? Promise.resolve(configuredDialect(name))
      : (async () => {
          const [rows] = await (via ?? pool).query<RowDataPacket[]>(VERSION_SQL)
          return parseServerVersion(String(rows[0]?.v ?? ''), String(rows[0]?.c ?? ''))
        })()
    cache.set(pool, p)
    p.catch(() => cache.delete(pool))
  }
  return p
}
