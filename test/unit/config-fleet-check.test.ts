/**
 * Issue 16, point 6 and the pure portability points of `config check`: the
 * dialect setting, the version column's ALTER for the server's dialect, key
 * column types, and the mixed-fleet refusal.
 */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { dialectSetting, parseConfig } from '../../src/config/schema.js'
import { mixedFleet } from '../../src/config/fleet-check.js'
import { parseServerVersion } from '../../src/runtime/dialect.js'
import { columnFindings, keyColumnNotes, type ColumnFact } from '../../src/sql/schema-lint.js'

const base = { legacyUrl: 'mysql://root@127.0.0.1:3306', legacyDatabase: 'shop', legacyTable: 'orders', idCeiling: '1000', shardHosts: ['mysql://root@127.0.0.1:3307'] }
const mariadb = parseServerVersion('10.11.6-MariaDB', '')
const mysql8 = parseServerVersion('8.0.36', 'MySQL Community Server - GPL')
const mysql57 = parseServerVersion('5.7.44', 'MySQL Community Server (GPL)')

describe('the dialect is set in the config, fleet-wide or per server', () => {
  it('accepts a name or a map and refuses an unknown server or dialect', () => {
    const raw = buildConfig(base)
    expect(dialectSetting(parseConfig(raw), 'h1')).toBe('auto')
    expect(dialectSetting(parseConfig({ ...raw, dialect: 'mysql8' }), 'legacy')).toBe('mysql8')
    const per = parseConfig({ ...raw, dialect: { default: 'mariadb', h1: 'mysql57' } })
    expect(dialectSetting(per, 'h1')).toBe('mysql57')
    expect(dialectSetting(per, 'legacy')).toBe('mariadb')
    expect(() => parseConfig({ ...raw, dialect: { h9: 'mysql8' } })).toThrow(/dialect\.h9: names "h9"/)
    expect(() => parseConfig({ ...raw, dialect: 'oracle' })).toThrow(/dialect/)
  })
})

const col = (name: string, columnType: string, o: Partial<ColumnFact> = {}): ColumnFact => ({ name, dataType: columnType.replace(/\(.*$/, '').split(' ')[0]!, columnType, nullable: false, precision: null, scale: null, ...o })

describe('issue 16 point 6: the version column, checked with the exact ALTER', () => {
  const layout = { userColumn: 'user_id', merchantColumn: 'merchant_id' }
  const keys = [col('user_id', 'bigint(20) unsigned'), col('merchant_id', 'bigint(20)')]

  it('prints the instant ADD COLUMN for the server that will run it', () => {
    const [f] = columnFindings({ table: 'orders', database: 'shop', dialect: mariadb, columns: keys, autoIncrementColumn: null, uniqueKeys: [], foreignKeys: [], triggers: [], views: [] }, layout)
    expect(f).toMatchObject({ kind: 'version-column', object: 'orders.version', fix: 'ALTER TABLE `shop`.`orders` ADD COLUMN `version` INT UNSIGNED NOT NULL DEFAULT 1, ALGORITHM=INSTANT' })
    expect(f!.message).toMatch(/On MariaDB 10\.11\.6 it is instant/)
    const [g] = columnFindings({ table: 'orders', database: 'shop', dialect: mysql57, columns: keys, autoIncrementColumn: null, uniqueKeys: [], foreignKeys: [], triggers: [], views: [] }, layout)
    expect(g!.fix).toBe('ALTER TABLE `shop`.`orders` ADD COLUMN `version` INT UNSIGNED NOT NULL DEFAULT 1, ALGORITHM=INPLACE, LOCK=NONE')
    expect(g!.message).toMatch(/not instant/)
  })

  it('asks for MODIFY when the column is signed or nullable, and nothing when it is right', () => {
    const facts = (v: ColumnFact) => ({ table: 'orders', database: 'shop', dialect: mysql8, columns: [...keys, v], autoIncrementColumn: null, uniqueKeys: [], foreignKeys: [], triggers: [], views: [] })
    expect(columnFindings(facts(col('version', 'int(11)')), layout)[0]!.fix).toBe('ALTER TABLE `shop`.`orders` MODIFY COLUMN `version` INT UNSIGNED NOT NULL DEFAULT 1')
    expect(columnFindings(facts(col('version', 'int(10) unsigned', { nullable: true })), layout)).toHaveLength(1)
    expect(columnFindings(facts(col('version', 'int(10) unsigned')), layout)).toEqual([])
    expect(columnFindings(facts(col('version', 'bigint(20) unsigned')), layout)).toEqual([])
  })

  it('refuses key columns the router cannot route, and notes the rows it will report', () => {
    const facts = (u: ColumnFact) => ({ table: 'orders', columns: [u, col('merchant_id', 'bigint(20) unsigned'), col('version', 'int(10) unsigned')], autoIncrementColumn: null, uniqueKeys: [], foreignKeys: [], triggers: [], views: [] })
    expect(columnFindings(facts(col('user_id', 'varchar(20)')), layout)[0]).toMatchObject({ kind: 'key-column', object: 'orders.user_id' })
    expect(columnFindings(facts(col('user_id', 'decimal(20,2)', { dataType: 'decimal', precision: 20, scale: 2 })), layout)).toHaveLength(1)
    expect(columnFindings(facts(col('user_id', 'decimal(20,0)', { dataType: 'decimal', precision: 20, scale: 0 })), layout)).toEqual([])
    expect(columnFindings(facts(col('user_id', 'decimal(30,0)', { dataType: 'decimal', precision: 30, scale: 0 })), layout)).toHaveLength(1)
    expect(keyColumnNotes(facts(col('user_id', 'bigint(20)', { nullable: true })), layout)[0]).toMatch(/user_id .* may hold NULL or negative values.*"unroutable"/)
    expect(keyColumnNotes(facts(col('user_id', 'bigint(20) unsigned')), layout)).toEqual([])
  })
})

describe('portability: a mixed MariaDB/MySQL fleet is refused, naming the hosts and the reason', () => {
  it('names each side', () => {
    const d = new Map([['legacy', mariadb], ['control', mysql8], ['h1', mariadb], ['h2', mysql8]])
    const [p] = mixedFleet(d, ['h1', 'h2'])
    expect(p!.kind).toBe('mixed-fleet')
    expect(p!.servers).toEqual(['legacy', 'h1', 'h2'])
    expect(p!.message).toMatch(/legacy \(MariaDB 10\.11\.6\), h1 \(MariaDB 10\.11\.6\) against h2 \(MySQL 8\.0\.36\).*JSON is kept as written on MariaDB and normalized on MySQL/)
    expect(mixedFleet(new Map([['legacy', mysql8], ['h1', mysql57]]), ['h1'])).toEqual([])
  })
})
