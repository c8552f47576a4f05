/**
 * Issue 16: the row hash is computed from what is stored (FLOAT widened to
 * its exact double, TIMESTAMP by instant, BIT as a number, text as bytes when
 * collations differ), not from how a session prints it. SQL text only; the
 * live one-bit changes are in test/integration/column-catalogue.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { rowTextSql, type ColumnInfo } from '../../src/verify/row-hash.js'

describe('the row hash covers what is stored, not how the session prints it', () => {
  const col = (name: string, dataType: string, o: Partial<ColumnInfo> = {}): ColumnInfo => ({ name, nullable: false, stringish: !['float', 'double', 'timestamp', 'bit', 'int', 'bigint', 'decimal', 'datetime'].includes(dataType), dataType, collation: null, ...o })

  it('widens FLOAT, hashes TIMESTAMP by instant and BIT as a number (it printed 6 float digits and local time)', () => {
    const text = rowTextSql([col('id', 'bigint'), col('w', 'float'), col('d', 'double'), col('ts', 'timestamp', { nullable: true }), col('b', 'bit'), col('tok', 'varbinary', { stringish: true })])
    expect(text).toBe("CONCAT_WS('#',`id`,(`w` + 0E0),`d`,UNIX_TIMESTAMP(`ts`),(`b` + 0),OCTET_LENGTH(`tok`),`tok`,ISNULL(`ts`))")
  })

  it('hashes text as its bytes only when CONCAT_WS could refuse the collations', () => {
    const one = rowTextSql([col('a', 'varchar', { collation: 'utf8mb4_unicode_ci' }), col('b', 'text', { collation: 'utf8mb4_unicode_ci' })])
    expect(one).not.toContain('CAST')
    // A _bin collation of the same set (MariaDB's JSON is utf8mb4_bin) and latin1 beside utf8mb4 are reconciled by the server.
    expect(rowTextSql([col('a', 'varchar', { collation: 'utf8mb4_unicode_ci' }), col('j', 'longtext', { collation: 'utf8mb4_bin' }), col('l', 'varchar', { collation: 'latin1_swedish_ci' })])).not.toContain('CAST')
    const mixed = rowTextSql([col('a', 'varchar', { collation: 'utf8mb4_unicode_ci' }), col('b', 'varchar', { collation: 'utf8mb4_general_ci' }), col('g', 'geometry')])
    expect(mixed).toBe("CONCAT_WS('#',OCTET_LENGTH(`a`),CAST(`a` AS BINARY),OCTET_LENGTH(`b`),CAST(`b` AS BINARY),OCTET_LENGTH(`g`),`g`)")
    expect(rowTextSql([col('a', 'varchar', { collation: 'latin1_swedish_ci' }), col('b', 'varchar', { collation: 'ucs2_general_ci' })])).toContain('CAST(`a` AS BINARY)')
  })
})
