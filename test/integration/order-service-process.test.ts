/**
 * The service process (`examples/order-service/main.ts`) on a real fleet:
 * ready once the stage is known, serving with ids from a leased worker, not
 * ready while Redis is lost (through a TCP proxy we cut; the shared Redis is
 * never touched), ready again after, and a clean exit 0 on SIGTERM.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openRuntime, provision, buildConfig, decodeId, shardOfKey } from '../../src/index.js'
import { parseConfig } from '../../src/config/schema.js'
import { startService, type ServiceInstance } from '../../examples/demo/processes.js'
import { createLegacyTable, dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'

const prefix = testPrefix('ordersproc')
let proxy: TcpProxy
let svc: ServiceInstance | undefined
let configPath: string
const dir = mkdtempSync(join(tmpdir(), 'skt-ordersproc-'))

beforeAll(async () => {
  const redis = new URL(testRedisUrl())
  proxy = await startTcpProxy({ targetHost: redis.hostname, targetPort: Number(redis.port || 6379) })
  const raw = buildConfig({ legacyUrl: testMysqlUrl(), legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [testMysqlUrl()], prefix, redisUrl: `redis://127.0.0.1:${proxy.port}`, redisKeyPrefix: `${prefix.replace(/_$/, '')}:` })
  const config = parseConfig(raw, {})
  await createLegacyTable(config)
  const rt = openRuntime(config)
  await provision(rt)
  await rt.close()
  configPath = join(dir, 'shardkit.json')
  writeFileSync(configPath, JSON.stringify(raw))
})
afterAll(async () => {
  await svc?.stop()
  await proxy?.close()
  await dropPrefixedDatabases(prefix)
  rmSync(dir, { recursive: true, force: true })
})

const ready = async (url: string) => (await fetch(`${url}/readyz`)).status

async function until(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

describe('order service process', () => {
  it('serves with generator ids, reports not ready without Redis, and exits 0 on SIGTERM', async () => {
    svc = await startService(configPath, `${prefix}p1`, join(dir, 'svc.log'))
    expect(await ready(svc.url)).toBe(200)
    const res = await fetch(`${svc.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: '123457', merchant_id: '9', total_cents: 500, items: [{ sku: 'X', qty: 1, price_cents: 500 }] }) })
    expect(res.status).toBe(201)
    const order = (await res.json()) as { order_id: string }
    expect(decodeId(order.order_id).shard).toBe(shardOfKey('123457'))

    proxy.cut()
    expect(await until(async () => (await ready(svc!.url)) === 503, 10_000)).toBe(true)
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200)
    proxy.restore()
    expect(await until(async () => (await ready(svc!.url)) === 200, 15_000)).toBe(true)

    expect(await svc.stop()).toBe(0)
    svc = undefined
  })
})
