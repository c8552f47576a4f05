/**
 * Regression (demo beside other suites, 2026-12-02): `shardctl backfill`
 * printed "unexpected error: Too many connections" when the MySQL server's
 * max_connections was reached. A driver error the library does not wrap is
 * named by its code with what to do, never "unexpected error". A real
 * server with a tiny max_connections is filled up, then shardctl runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mysql from 'mysql2/promise'
import { buildConfig } from '../../src/config/init.js'
import { startMariadbInstance, type MariadbInstance } from '../support/mariadb-instance.js'
import { shardctlInProcess, writeConfigFile } from './operator-support.js'

let inst: MariadbInstance
let url: string
const held: mysql.Connection[] = []

beforeAll(async () => {
  inst = await startMariadbInstance({ extraArgs: ['--max-connections=10'] })
  // 10 is MariaDB's smallest max_connections. root may exceed it (CONNECTION ADMIN); an ordinary account may not.
  const admin = await mysql.createConnection({ uri: inst.url })
  await admin.query("CREATE USER 'sk_app'@'%' IDENTIFIED BY 'sk-app-pw'")
  await admin.query("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON *.* TO 'sk_app'@'%'")
  await admin.end()
  url = `mysql://sk_app:sk-app-pw@127.0.0.1:${inst.port}`
}, 120_000)
afterAll(async () => {
  for (const c of held) await c.end().catch(() => undefined)
  await inst?.destroy()
})

describe('a driver error reaching the operator', () => {
  it('max_connections reached: exit 1, names max_connections and the fix, not "unexpected error"', async () => {
    for (;;) {
      try {
        held.push(await mysql.createConnection({ uri: url }))
      } catch (err) {
        expect((err as { code?: string }).code).toBe('ER_CON_COUNT_ERROR')
        break
      }
      expect(held.length).toBeLessThan(20)
    }
    const raw = buildConfig({ legacyUrl: url, legacyDatabase: 'sk_full_legacy', legacyTable: 'orders', idCeiling: '1000', shardHosts: [url], prefix: 'sk_full_' })
    const r = await shardctlInProcess(writeConfigFile(raw), ['provision'])
    expect(r.code).toBe(1)
    expect(r.stderr).not.toContain('unexpected error')
    expect(r.stderr).toContain('max_connections')
    expect(r.stderr).toContain('ER_CON_COUNT_ERROR')
    expect(r.stderr).not.toContain('sk-app-pw')
  })
})
