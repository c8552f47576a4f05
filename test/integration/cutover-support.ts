/**
 * Shared helpers of the cutover integration tests: a provisioned fleet with
 * its own databases and Redis prefix, guard readers for backfill/verify
 * results (those modules' outcomes, given; the journal is read for real), a
 * minimal fenced writer (what the dual-write store does on its primary), and
 * Redis key cleanup under the fleet's prefix.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { Redis } from 'ioredis'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { provision } from '../../src/provision/provision.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { checkFence } from '../../src/cutover/fence.js'
import { stagePolicy, type Stage, type StageState } from '../../src/cutover/stages.js'
import type { StageSource } from '../../src/cutover/watcher.js'
import { DEFAULT_GUARD_READERS, type GuardReaders } from '../../src/cutover/guards.js'
import { moveStage } from '../../src/cutover/steps.js'
import { readStageState } from '../../src/cutover/switch-store.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { isShardkitError } from '../../src/errors.js'
import { createLegacyTable, testFleetConfig, testPrefix, testRedisUrl, dropPrefixedDatabases } from '../support/db.js'

export interface Fleet {
  readonly prefix: string
  readonly config: ShardkitConfig
  /** The operator's runtime (moves the stage). */
  readonly rt: Runtime
  /** A runtime for one more service instance; `redisUrl` to route its Redis through a proxy. */
  instance(opts?: { redisUrl?: string }): Runtime
  cleanup(): Promise<void>
}

/** A provisioned test fleet (legacy table, shard tables, control and primary tables). */
export async function setupFleet(label: string): Promise<Fleet> {
  const prefix = testPrefix(label)
  const config = testFleetConfig({ prefix })
  await createLegacyTable(config)
  const rt = openRuntime(config)
  await provision(rt)
  const runtimes: Runtime[] = [rt]
  return {
    prefix,
    config,
    rt,
    instance(opts = {}) {
      const r = openRuntime(opts.redisUrl ? { ...config, redis: { ...config.redis, url: opts.redisUrl } } : config)
      runtimes.push(r)
      return r
    },
    async cleanup() {
      await Promise.all(runtimes.map((r) => r.close()))
      await deleteRedisKeys(config.redis.keyPrefix)
      await dropPrefixedDatabases(prefix)
    },
  }
}

/** Deletes every Redis key under `keyPrefix` (this test's only). */
export async function deleteRedisKeys(keyPrefix: string): Promise<void> {
  if (!/^skt_[a-z0-9]+_[0-9a-f]{6}:$/.test(keyPrefix)) throw new Error(`refusing to delete keys for unexpected prefix ${keyPrefix}`)
  const r = new Redis(testRedisUrl())
  try {
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 200)
      cursor = next
      if (keys.length) await r.del(...keys)
    } while (cursor !== '0')
  } finally {
    r.disconnect()
  }
}

/** Readers reporting a complete backfill and a clean verify started now; the journal is read for real. */
export function passingReaders(): GuardReaders {
  return {
    readBackfillStatus: async () => ({
      state: 'complete',
      dimensions: { user: { state: 'complete', rowsCopied: 0, updatedAt: null }, merchant: { state: 'complete', rowsCopied: 0, updatedAt: null } },
      completedAt: new Date().toISOString(),
    }),
    readLastVerify: async () => {
      const at = new Date(Date.now() + 1).toISOString()
      return { runId: 'v-test', startedAt: at, finishedAt: at, clean: true, differences: 0, since: null, dimension: 'all' }
    },
    readJournalDepth: DEFAULT_GUARD_READERS.readJournalDepth,
  }
}

/** Advances (guards met) until the fleet is at `stage` (and `percent` at read-shards). */
export async function walkTo(rt: Runtime, stage: Stage, percent = 100, opts: { ackTimeoutMs?: number } = {}): Promise<StageState> {
  for (let i = 0; i < 10; i++) {
    const s = await readStageState(rt)
    if (s.stage === stage && (stage !== 'read-shards' || s.readPercent === percent)) return s
    let percentArg: number | undefined
    if (s.stage === 'shadow-read' && stage === 'read-shards') percentArg = percent
    else if (s.stage === 'read-shards') percentArg = stage === 'read-shards' ? percent : s.readPercent < 100 ? 100 : undefined
    const r = await moveStage(rt, { kind: 'advance', ...(percentArg !== undefined ? { percent: percentArg } : {}), readers: passingReaders(), actor: 'test', ...opts })
    if (r.outcome !== 'done') throw new Error(`walkTo ${stage}: ${r.outcome}: ${r.reasons.join('; ')}`)
  }
  throw new Error(`walkTo ${stage}: did not get there`)
}

/** Where one write went and under which stage version. */
export interface WriteRecord {
  readonly orderId: string
  readonly side: 'legacy' | 'user'
  readonly version: number
  /** performance.now() right after the commit. */
  readonly committedAt: number
}

/**
 * The minimal fenced writer: a transaction on the stage's write primary,
 * `checkFence` at the planned version, one INSERT (note = planned version), commit.
 */
export async function fencedInsert(rt: Runtime, state: StageState, orderId: string, userId: string): Promise<WriteRecord> {
  const policy = stagePolicy(state)
  const p = rt.config.dimensions.user.shards[shardOfKey(userId)]!
  const where = policy.writePrimary === 'legacy' ? { pool: rt.legacy(), database: rt.config.legacy.database, table: rt.config.legacy.table } : { pool: rt.host(p.host), database: p.database, table: p.table }
  const conn = await where.pool.getConnection()
  try {
    await conn.beginTransaction()
    try {
      await checkFence(conn, where.database, state.version)
      await conn.query(
        `INSERT INTO ${qualified(where.database, where.table)} (order_id, user_id, merchant_id, status, total_cents, currency, items, address, phone, note, version, created_at, updated_at)
           VALUES (?, ?, 7, 'created', 100, 'CNY', '[]', NULL, NULL, ?, 1, NOW(3), NOW(3))`,
        [orderId, userId, String(state.version)],
      )
      await conn.commit()
    } catch (err) {
      await conn.rollback().catch(() => undefined)
      throw err
    }
  } finally {
    conn.release()
  }
  return { orderId, side: policy.writePrimary, version: state.version, committedAt: performance.now() }
}

/** A writer loop on one instance: inserts with retry on retryable fence refusals until stopped. */
export function startWriter(rt: Runtime, source: StageSource, opts: { firstId: number; userId?: (i: number) => string }) {
  let stop = false
  const committed: WriteRecord[] = []
  const refused: { orderId: string; version: number }[] = []
  const userOf = opts.userId ?? ((i: number) => String(1000 + (i % 240)))
  const done = (async () => {
    for (let i = opts.firstId; !stop; i++) {
      const orderId = String(i)
      for (;;) {
        const s = source.current()!
        try {
          committed.push(await fencedInsert(rt, s, orderId, userOf(i)))
          break
        } catch (err) {
          if (!isShardkitError(err, 'FENCE_REJECTED') || !err.retryable) throw err
          refused.push({ orderId, version: s.version })
          if (stop) return
          await new Promise((r) => setTimeout(r, 2))
        }
      }
    }
  })()
  return {
    committed,
    refused,
    async stop(): Promise<void> {
      stop = true
      await done
    },
  }
}

/** Rows (order_id, note = planned version) in the legacy table and in every user shard table. */
export async function rowsBySide(rt: Runtime): Promise<{ legacy: Map<string, number>; user: Map<string, number> }> {
  const read = async (pool: ReturnType<Runtime['legacy']>, db: string, table: string, into: Map<string, number>) => {
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT order_id, note FROM ${qualified(db, table)}`)
    for (const r of rows) into.set(String(r.order_id), Number(r.note))
  }
  const legacy = new Map<string, number>()
  const user = new Map<string, number>()
  await read(rt.legacy(), rt.config.legacy.database, rt.config.legacy.table, legacy)
  for (const p of rt.config.dimensions.user.shards) await read(rt.host(p.host), p.database, p.table, user)
  return { legacy, user }
}

/** Waits until `cond()` holds, polling every 5 ms, at most `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
