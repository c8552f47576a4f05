/**
 * A service instance as a child process for fault scenarios: follows the
 * stage (StageWatcher), writes orders through the dual-write store, and
 * announces its phase points on the hook socket (argv[3]) so the test can
 * kill it between a primary commit and the secondary writes.
 *
 *   node --import tsx store-child.ts <config.json> <hooks.sock> <first-user> <count>
 *
 * Prints `try <id> <user> <merchant>` before and `ack <id>` after each insert.
 */
import { readFileSync } from 'node:fs'
import { parseConfig } from '../../../src/config/schema.js'
import { openRuntime } from '../../../src/runtime/runtime.js'
import { StageWatcher } from '../../../src/cutover/watcher.js'
import { DualWriteStore } from '../../../src/dualwrite/store.js'
import { installFaultHooks } from '../../../src/cli/fault-hooks.js'
import { encodeId } from '../../../src/idgen/layout.js'
import { shardOfKey } from '../../../src/router/shard-function.js'
import { orderRow } from '../../integration/dualwrite-support.js'

const [configPath, socketPath, firstUser, count] = process.argv.slice(2) as [string, string, string, string]
installFaultHooks(socketPath)
const rt = openRuntime(parseConfig(JSON.parse(readFileSync(configPath, 'utf8')), {}))
const watcher = new StageWatcher(rt, { instanceId: `store-child-${process.pid}`, heartbeatMs: 200 })
await watcher.start()
const store = new DualWriteStore({ runtime: rt, stage: watcher })
for (let i = 0; i < Number(count); i++) {
  const userId = String(Number(firstUser) + i)
  const merchantId = String(800 + i)
  // Worker 99 (the test process uses 7): ids never collide with the test's own.
  const id = encodeId({ time: 20_000_000 + (process.pid % 1_000_000) * 100 + i, worker: 99, sequence: i % 128, shard: shardOfKey(userId) })
  process.stdout.write(`try ${id} ${userId} ${merchantId}\n`)
  await store.insert(orderRow(id, userId, merchantId))
  process.stdout.write(`ack ${id}\n`)
}
await store.flush()
await watcher.close()
await rt.close()
