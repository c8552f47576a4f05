/**
 * Issue 16, points 5 and 6 and the portability points that are pure: the
 * control URL's path, the version column's ALTER, the mixed-fleet refusal
 * and the DDL translation for a server of another version.
 */
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import { dialectSetting, parseConfig } from '../../src/config/schema.js'
import { mixedFleet } from '../../src/config/fleet-check.js'
import { parseServerVersion } from '../../src/runtime/dialect.js'
import { columnFindings, keyColumnNotes, type ColumnFact } from '../../src/sql/schema-lint.js'
import { shardTableDDL, translateDDL } from '../../src/provision/shard-ddl.js'

const base = { legacyUrl: 'mysql://root@127.0.0.1:3306', legacyDatabase: 'shop', legacyTable: 'orders', idCeiling: '1000', shardHosts: ['mysql://root@127.0.0.1:3307'] }
const mariadb = parseServerVersion('10.11.6-MariaDB', '')
const mysql8 = parseServerVersion('8.0.36', 'MySQL Community Server - GPL')
const mysql57 = parseServerVersion('5.7.44', 'MySQL Community Server (GPL)')

describe('issue 16 point 5: the control URL path names the control database', () => {
  it('config init --control mysql://host:3306/ctl_db makes ctl_db the control database (provision failed with Unknown database)', () => {
    const raw = buildConfig({ ...base, controlUrl: 'mysql://root@10.0.0.9:3306/ctl_db' })
    expect(raw.control).toEqual({ url: 'mysql://root@10.0.0.9:3306', database: 'ctl_db' })
    expect(parseConfig(raw).control).toEqual({ url: 'mysql://root@10.0.0.9:3306', database: 'ctl_db' })
    expect(buildConfig({ ...base, controlUrl: 'mysql://root@10.0.0.9:3306' }).control.database).toBe('sk_control')
    expect(buildConfig(base).control).toEqual({ url: 'mysql://root@127.0.0.1:3307', database: 'sk_control' })
  })

  it('a config whose URL path names another database than the one it uses is refused, naming both', () => {
    const raw = buildConfig(base)
    const bad = { ...raw, control: { url: 'mysql://root@127.0.0.1:3307/ctl_db', database: 'sk_control' } }
    expect(() => parseConfig(bad)).toThrow(/control\.url: names database "ctl_db" in its path, but control\.database is "sk_control"/)
    const badLegacy = { ...raw, legacy: { ...raw.legacy, url: 'mysql://root@127.0.0.1:3306/other' } }
    expect(() => parseConfig(badLegacy)).toThrow(/legacy\.url: names database "other"/)
    expect(() => parseConfig({ ...raw, legacy: { ...raw.legacy, url: 'mysql://root@127.0.0.1:3306/shop' } })).not.toThrow()
  })
})

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

describe('portability: SHOW CREATE TABLE is translated for the target server', () => {
  const mysqlCreate = [
    'CREATE TABLE `orders` (',
    '  `order_id` bigint unsigned NOT NULL,',
    "  `note` varchar(20) COLLATE utf8mb4_0900_as_cs DEFAULT NULL /*!80016 COMMENT 'x' */,",
    '  PRIMARY KEY (`order_id`)',
    ") ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci /*!80016 DEFAULT ENCRYPTION='N' */",
  ].join('\n')

  it('a utf8mb4_0900_ai_ci table becomes creatable on MariaDB (it failed: unknown collation)', () => {
    const ddl = shardTableDDL(mysqlCreate, { database: 'sk_user_0', table: 'orders_001' }, { dimension: 'user', addMerchantIndex: false, merchantColumn: 'm', primaryKey: 'order_id', target: mariadb })
    expect(ddl).toContain('COLLATE=utf8mb4_uca1400_ai_ci')
    expect(ddl).toContain('COLLATE utf8mb4_uca1400_as_cs')
    expect(ddl).not.toContain('0900')
    expect(ddl).not.toContain('/*!80016')
    expect(ddl).not.toContain('AUTO_INCREMENT=')
    expect(translateDDL(mysqlCreate, mysql8)).toBe(mysqlCreate)
    expect(translateDDL('DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_ai_ci', mysql8)).toBe('DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci')
  })
})
