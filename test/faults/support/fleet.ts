/**
 * A provisioned fleet for fault scenarios: its own databases (test prefix),
 * its own Redis key prefix (on the shared Redis, or on a Redis the test
 * started itself), optionally shard hosts on extra mariadbd instances, and a
 * config file so a child `shardctl` can run against the same fleet.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, type ShardkitConfig } from '../../../src/config/schema.js'
import { provision } from '../../../src/provision/provision.js'
import { openRuntime, type Runtime } from '../../../src/runtime/runtime.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetRaw, testPrefix } from '../../support/db.js'
import { deleteRedisKeys, until, walkTo } from '../../integration/cutover-support.js'
import { StageWatcher } from '../../../src/cutover/watcher.js'
import { DualWriteStore } from '../../../src/dualwrite/store.js'

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
  const raw = testFleetRaw({ prefix, ...(opts.shardHosts ? { shardHosts: opts.shardHosts } : {}), ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}) })
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

/**
 * One service instance at `dual-write`: a stage watcher on its own runtime and
 * a store over the operator's runtime; the fleet is walked to `dual-write` and
 * the watcher has applied it. Close the watcher in afterAll.
 */
export async function instanceAtDualWrite(fleet: FaultFleet, instanceId: string, secondaryTimeoutMs = 1_000): Promise<{ watcher: StageWatcher; store: DualWriteStore }> {
  const watcher = new StageWatcher(fleet.instance(), { instanceId, heartbeatMs: 200, pollMs: 200 })
  await watcher.start()
  const store = new DualWriteStore({ runtime: fleet.rt, stage: watcher, secondaryTimeoutMs })
  await walkTo(fleet.rt, 'dual-write', 100, { ackTimeoutMs: 10_000 })
  await until(() => watcher.current()?.stage === 'dual-write', 5_000, 'the watcher')
  return { watcher, store }
}
