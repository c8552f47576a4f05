/**
 * Shared helpers of the dual-write integration tests: a fixed stage source
 * (the stage source is an interface; a fixed one is not a mock of any
 * service), fence rows opened at the stage version, and direct reads of the
 * physical tables.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { stagePolicy, type Stage, type StageState } from '../../src/cutover/stages.js'
import { raiseFences } from '../../src/cutover/fence.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { primaryDatabases, type Location } from '../../src/dualwrite/placement.js'
import { createMysqlPool, qualified } from '../../src/runtime/mysql.js'
import { encodeId } from '../../src/idgen/layout.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { provision } from '../../src/provision/index.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import type { OrderRow } from '../../src/dualwrite/store.js'

/** A stage source a test moves by hand; every move bumps the version and reopens the fences at it. */
export class FixedStage {
  state: StageState = { stage: 'legacy', version: 1, readPercent: 0, changedAt: new Date(0).toISOString() }
  readonly ready = true
  /**
   * With `rt`, a change of the write primary is done as the real switch does it
   * (src/cutover/steps.ts): raise every fence, drain the journal inside it, then
   * open at the new version. Without the drain, a copy still in flight at the
   * flip is refused by the new fence and the order is only in the old primary:
   * the shortcut made order-service-load flaky (a status change got 404).
   */
  constructor(private readonly config: ShardkitConfig, private readonly pools: (host: string) => Pool, private readonly rt?: Runtime) {}
  current(): StageState {
    return this.state
  }
  async set(stage: Stage, readPercent?: number): Promise<StageState> {
    const pct = readPercent ?? (stage === 'read-shards' ? 50 : stage === 'write-shards' || stage === 'shards' ? 100 : 0)
    const next = { stage, version: this.state.version + 1, readPercent: pct, changedAt: new Date().toISOString() }
    if (this.rt && stagePolicy(this.state).writePrimary !== stagePolicy(next).writePrimary) {
      // An operator reruns a move that aborted (the abort restores the old stage); so does the test.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.flipWritePrimary(this.rt, next)
          return this.state
        } catch (err) {
          if (attempt === 4) throw err
          await new Promise((r) => setTimeout(r, 200))
        }
      }
    }
    this.state = next
    await openFences(this.config, this.pools, this.state.version)
    return this.state
  }

  /**
   * Raise, drain, open, as moveStage does, on its own runtime as `shardctl cutover`
   * runs in its own process: writers waiting at the raised fence each hold a
   * connection of the service's pools, and a drain sharing those pools found none
   * free for its copies (events-flip failed with entries left).
   */
  private async flipWritePrimary(rt: Runtime, next: StageState): Promise<void> {
    const own = openRuntime(rt.config)
    try {
      // Bounded as moveStage bounds them (its defaults: 5 s drain), so writes never wait at the
      // fence longer than a real switch would hold them: an attempt that cannot drain in time gives up.
      const raised = await raiseFences(own, { currentVersion: this.state.version, timeoutMs: 5_000 })
      try {
        const d = await drainJournal(own, { signal: AbortSignal.timeout(5_000) })
        // As strict as moveStage: a primary whose drain stopped (unreachable) may still hold entries.
        if (d.remaining > 0 || d.failed > 0 || d.unreachable.length > 0) throw new Error(`journal not drained: ${d.remaining} left, ${d.failed} failed, unreachable: ${d.unreachable.join(', ') || 'none'}`)
        this.state = next
        await raised.open(next.version)
      } catch (err) {
        await raised.release()
        throw err
      }
    } finally {
      await own.close()
    }
  }
}

/** Opens the fence row (id=1, per the cutover contract) of every primary database at `version`. */
export async function openFences(config: ShardkitConfig, pools: (host: string) => Pool, version: number): Promise<void> {
  for (const p of primaryDatabases(config)) {
    await pools(p.host).query(
      `INSERT INTO ${qualified(p.database, 'shardkit_fence')} (id, stage_version, state) VALUES (1, ?, 'open') ON DUPLICATE KEY UPDATE stage_version = VALUES(stage_version), state = 'open'`,
      [version],
    )
  }
}

/** Pools by host name (`legacy` included) on the servers of a config; end them with `endPools`. */
export function hostPools(config: ShardkitConfig): { get: (host: string) => Pool; end: () => Promise<void> } {
  const pools = new Map<string, Pool>()
  return {
    get(host: string) {
      let p = pools.get(host)
      if (!p) {
        p = createMysqlPool(host === 'legacy' ? config.legacy.url : config.hosts[host]!, { connectionLimit: 4 })
        pools.set(host, p)
      }
      return p
    },
    async end() {
      await Promise.all([...pools.values()].map((p) => p.end()))
    },
  }
}

/** The row at a physical location, or undefined. */
export async function physicalRow(pool: Pool, l: Location, orderId: string): Promise<OrderRow | undefined> {
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT * FROM ${qualified(l.database, l.table)} WHERE order_id = ?`, [orderId])
  return rows[0] as OrderRow | undefined
}

let seq = 0
/** A new-style order id for a user (distinct within the process). */
export function newOrderId(userId: string): string {
  seq++
  return encodeId({ time: 10_000_000 + seq, worker: 7, sequence: seq % 128, shard: shardOfKey(userId) })
}

/** A legacy-shaped order row. */
export function orderRow(orderId: string, userId: string, merchantId: string, over: OrderRow = {}): OrderRow {
  return {
    order_id: orderId,
    user_id: userId,
    merchant_id: merchantId,
    status: 'created',
    total_cents: 1999,
    currency: 'CNY',
    items: '[{"sku":"A-1","qty":2}]',
    address: '1 Test Road',
    phone: '555-0100',
    note: null,
    ...over,
  }
}

/** A provisioned test fleet (own databases under a fresh prefix), its runtime and direct pools; `cleanup` drops only its databases. */
export async function provisionedFleet(label: string): Promise<{ config: ShardkitConfig; rt: Runtime; pools: ReturnType<typeof hostPools>; cleanup(): Promise<void> }> {
  const prefix = testPrefix(label)
  const config = testFleetConfig({ prefix })
  const pools = hostPools(config)
  await createLegacyTable(config)
  const rt = openRuntime(config)
  await provision(rt)
  return {
    config,
    rt,
    pools,
    async cleanup() {
      await rt.close()
      await pools.end()
      await dropPrefixedDatabases(prefix)
    },
  }
}
