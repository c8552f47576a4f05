/**
 * Portability (issue 16): SHOW CREATE TABLE was copied verbatim, so a
 * utf8mb4_0900_ai_ci table failed to create on MariaDB. Provisioning now
 * translates it for the target server's dialect.
 */
import { describe, expect, it } from 'vitest'
import { shardTableDDL, translateDDL } from '../../src/provision/shard-ddl.js'
import type { Dialect } from '../../src/runtime/dialect.js'

const mariadb: Dialect = { name: 'mariadb', version: [10, 11, 6], source: 'detected' }
const mysql8: Dialect = { name: 'mysql8', version: [8, 0, 36], source: 'detected' }

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
