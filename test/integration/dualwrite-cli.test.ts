import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { buildConfig } from '../../src/config/init.js'
import { parseConfig } from '../../src/config/schema.js'
import { main } from '../../src/cli/main.js'
import type { CliIO } from '../../src/cli/io.js'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { silentLogger } from '../../src/runtime/logger.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { shardLocation } from '../../src/dualwrite/placement.js'
import { createLegacyTable, dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'
import { FixedStage, hostPools, newOrderId, orderRow, physicalRow } from './dualwrite-support.js'

const prefix = testPrefix('dwcli')
const dir = mkdtempSync(join(tmpdir(), 'shardkit-dwcli-'))
const configPath = join(dir, 'shardkit.json')
const raw = buildConfig({ legacyUrl: testMysqlUrl(), legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [testMysqlUrl()], databasesPerHost: 2, prefix, redisUrl: testRedisUrl(), redisKeyPrefix: `${prefix}:` })
const config = parseConfig(raw, {})
const pools = hostPools(config)
let rt: Runtime

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => (out += String(d)))
  stderr.on('data', (d) => (err += String(d)))
  const io: CliIO = { stdout, stderr, env: {}, cwd: dir, logger: silentLogger, isTTY: false }
  const code = await main(['node', 'shardctl', '-c', configPath, ...args], io)
  return { code, out, err }
}

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify(raw))
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
})
afterAll(async () => {
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
  rmSync(dir, { recursive: true, force: true })
})

describe('shardctl dualwrite', () => {
  it('status shows the journal per primary, drain replays it', async () => {
    const stage = new FixedStage(config, pools.get)
    await stage.set('dual-write')
    const store = new DualWriteStore({ runtime: rt, stage })
    const id = newOrderId('31')
    await store.insert(orderRow(id, '31', '41'))
    await store.flush()
    // a secondary that lost the row, and the journal entry a failed write would have left
    const u = shardLocation(config, 'user', '31')
    await pools.get(u.host).query(`DELETE FROM ${qualified(u.database, u.table)} WHERE order_id = ?`, [id])
    await rt.legacy().query(`INSERT INTO ${qualified(config.legacy.database, 'shardkit_journal')} (order_id, op, secondaries, user_id, merchant_id) VALUES (?, 'insert', 'user,merchant', '31', '41')`, [id])

    const s = await run('dualwrite', 'status', '--json')
    expect(s.code).toBe(0)
    const status = JSON.parse(s.out)
    expect(status.total).toBe(1)
    expect(status.primaries.map((p: { primary: string; depth: number }) => [p.primary, p.depth])).toEqual([
      ['legacy', 1],
      [`h1/${prefix}user_0`, 0],
      [`h1/${prefix}user_1`, 0],
    ])
    expect(status.primaries[0].oldestAgeMs).toBeGreaterThanOrEqual(0)

    const text = await run('dualwrite', 'status')
    expect(text.out).toMatch(/^legacy\s+legacy\s+1\s/m)
    expect(text.out).toMatch(/^total 1$/m)

    const d = await run('dualwrite', 'drain', '--json')
    expect(d.code).toBe(0)
    expect(JSON.parse(d.out)).toEqual({ replayed: 1, failed: 0, remaining: 0, unreachable: [] })
    expect(await physicalRow(pools.get(u.host), u, id)).toEqual(await physicalRow(pools.get('legacy'), { side: 'legacy', host: 'legacy', database: config.legacy.database, table: 'orders' }, id))
  })

  it('refuses a bad --timeout-ms with exit 2, naming the option', async () => {
    const r = await run('dualwrite', 'drain', '--timeout-ms', 'soon')
    expect(r.code).toBe(2)
    expect(r.err).toContain('--timeout-ms must be a whole number')
    expect(r.out).toBe('')
  })
})
