import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'

const run = promisify(execFile)
const CLI = join(process.cwd(), 'dist/bin/shardctl.js')
const prefix = testPrefix('configroute')
const dir = mkdtempSync(join(tmpdir(), 'skt-config-'))
const cfgPath = join(dir, 'shardkit.json')

async function shardctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('node', [CLI, ...args], { cwd: dir, env: { ...process.env, SHARDKIT_CONFIG: '' } })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

beforeAll(async () => {
  await createLegacyTable(testFleetConfig({ prefix }))
})
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await dropPrefixedDatabases(prefix)
})

describe('shardctl config, provision and route', () => {
  it('config init writes a valid config; provision twice creates 240 tables then nothing; route --order names user shard 105', async () => {
    const init = await shardctl([
      'config', 'init', '--legacy', testMysqlUrl(), '--table', `${prefix}legacy.orders`, '--user-column', 'user_id', '--merchant-column', 'merchant_id',
      '--shard-host', testMysqlUrl(), '--databases-per-host', '4', '--prefix', prefix, '--redis', testRedisUrl(), '-o', cfgPath,
    ])
    expect(init.stderr).toBe('')
    expect(init.code).toBe(0)
    const raw = JSON.parse(readFileSync(cfgPath, 'utf8'))
    expect(raw.legacy.idCeiling).toBe('0')

    const check = await shardctl(['-c', cfgPath, 'config', 'check'])
    expect(check.code).toBe(0)
    expect(check.stdout).toMatch(/user:\n\s+h1\s+120 shards/)

    const show = JSON.parse((await shardctl(['-c', cfgPath, 'config', 'show', '--json'])).stdout)
    expect(show.dimensions.user).toHaveLength(120)
    expect(show.dimensions.merchant[119]).toMatchObject({ shard: 119, host: 'h1', table: 'orders_119' })

    const p1 = await shardctl(['-c', cfgPath, 'provision'])
    expect(p1.code).toBe(0)
    expect(p1.stdout).toMatch(/created: .*240 shard tables/)
    const p2 = await shardctl(['-c', cfgPath, 'provision'])
    expect(p2.code).toBe(0)
    expect(p2.stdout).toMatch(/^nothing to do: .*240 shard tables/)

    const gen = await shardctl(['-c', cfgPath, 'id', 'new', '--user', '12345', '--count', '3'])
    expect(gen.stderr).not.toMatch(/^shardctl: (?!leasing)/m)
    const ids = gen.stdout.trim().split('\n')
    expect(new Set(ids).size).toBe(3)
    for (const id of ids) {
      const r = JSON.parse((await shardctl(['-c', cfgPath, 'route', '--order', id, '--json'])).stdout)
      expect(r).toMatchObject({ dimension: 'user', logicalShard: 105, host: 'h1', table: 'orders_105', via: 'order-id-shard-field' })
    }
    const byMerchant = JSON.parse((await shardctl(['-c', cfgPath, 'route', '--merchant', '241', '--json'])).stdout)
    expect(byMerchant).toMatchObject({ dimension: 'merchant', logicalShard: 1 })
    // a legacy id that was never backfilled: a typed not-found, never a guess
    writeFileSync(cfgPath, JSON.stringify({ ...raw, legacy: { ...raw.legacy, idCeiling: '1000' } }, null, 2))
    const legacy = await shardctl(['-c', cfgPath, 'route', '--order', '7'])
    expect(legacy.code).toBe(1)
    expect(legacy.stderr).toMatch(/legacy order id 7 is not in the lookup table/)
    const two = await shardctl(['-c', cfgPath, 'route', '--user', '1', '--merchant', '2'])
    expect(two.code).toBe(2)
  })

  it('a broken config gets exit 2 and every problem listed, with the password redacted', async () => {
    const raw = JSON.parse(readFileSync(cfgPath, 'utf8'))
    raw.hosts.h1 = 'mysql://root:s3cretpw@127.0.0.1:3306'
    raw.dimensions.user.placement[0].shards = '1-29'
    raw.dimensions.merchant.placement[1].host = 'nope'
    raw.hosts.h2 = 'mysql://u:${UNSET_SHARDKIT_VAR}@h:1'
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, JSON.stringify(raw))
    const r = await shardctl(['-c', bad, 'config', 'check'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/dimensions\.user\.placement: does not place user shards 0/)
    expect(r.stderr).toMatch(/dimensions\.merchant\.placement\[1\]\.host: names host "nope"/)
    expect(r.stderr).toMatch(/hosts\.h2: refers to \$\{UNSET_SHARDKIT_VAR\}, which is not set/)
    expect(r.stderr + r.stdout).not.toContain('s3cretpw')

    raw.legacy.table = 'ord ers'
    writeFileSync(bad, JSON.stringify(raw))
    const r2 = await shardctl(['-c', bad, 'config', 'check'])
    expect(r2.code).toBe(2)
    expect(r2.stderr).toMatch(/legacy\.table: must be a plain identifier/)
  })
})
