/**
 * A provisioned fleet for fault scenarios: its own databases (test prefix),
 * its own Redis key prefix (on the shared Redis, or on a Redis the test
 * started itself), optionally shard hosts on extra mariadbd instances, and a
 * config file so a child `shardctl` can run against the same fleet.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildConfig } from '../../../src/config/init.js'
import { parseConfig, type ShardkitConfig } from '../../../src/config/schema.js'
import { provision } from '../../../src/provision/provision.js'
import { openRuntime, type Runtime } from '../../../src/runtime/runtime.js'
import { createLegacyTable, dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../../support/db.js'
import { deleteRedisKeys } from '../../integration/cutover-support.js'

export interface FaultFleet {
  readonly prefix: string
  readonly config: ShardkitConfig
  /** A config file with the same fleet, for `shardctl -c`. */
  readonly configPath: string
  /** The operator's runtime. */
  readonly rt: Runtime
  /** Another runtime (one more service instance), optionally reaching Redis or legacy through a proxy; closed by cleanup. */
  instance(over?: { redisUrl?: string; legacyUrl?: string }): Runtime
  cleanup(): Promise<void>
}

/** Creates and provisions a fleet; `redisUrl` for a test-owned Redis, `shardHosts` for extra servers. */
export async function faultFleet(label: string, opts: { redisUrl?: string; shardHosts?: string[] } = {}): Promise<FaultFleet> {
  const prefix = testPrefix(label)
  const dir = mkdtempSync(join(tmpdir(), 'shardkit-faults-'))
  const configPath = join(dir, 'shardkit.json')
  const raw = buildConfig({
    legacyUrl: testMysqlUrl(),
    legacyDatabase: `${prefix}legacy`,
    legacyTable: 'orders',
    idCeiling: '1000000000',
    shardHosts: opts.shardHosts ?? [testMysqlUrl()],
    databasesPerHost: 2,
    prefix,
    redisUrl: opts.redisUrl ?? testRedisUrl(),
    redisKeyPrefix: `${prefix.replace(/_$/, '')}:`,
  })
  writeFileSync(configPath, JSON.stringify(raw, null, 2))
  const config = parseConfig(raw, {})
  await createLegacyTable(config)
  const rt = openRuntime(config)
  await provision(rt)
  const runtimes: Runtime[] = [rt]
  return {
    prefix,
    config,
    configPath,
    rt,
    instance(over = {}) {
      const r = openRuntime({
        ...config,
        ...(over.redisUrl ? { redis: { ...config.redis, url: over.redisUrl } } : {}),
        ...(over.legacyUrl ? { legacy: { ...config.legacy, url: over.legacyUrl } } : {}),
      })
      runtimes.push(r)
      return r
    },
    async cleanup() {
      await Promise.all(runtimes.map((r) => r.close().catch(() => undefined)))
      if (!opts.redisUrl) await deleteRedisKeys(config.redis.keyPrefix)
      await dropPrefixedDatabases(prefix)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
