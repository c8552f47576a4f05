/**
 * The soak's deleter: deletes seeded legacy orders through a `DualWriteStore`
 * of its own (a live instance with its own `StageWatcher`, so every move
 * waits for it too) while the faults land, and remembers each delete the
 * store acknowledged. The seeded orders are the backfill's rows, so a
 * backfill killed and resumed, a stalled copy, a replayed journal entry or a
 * repair could each bring one back: `checkDeletedStayDeleted` looks for every
 * acknowledged delete in legacy and in every shard table of both dimensions.
 * The load generator never touches seeded orders, and the deleter picks only
 * within the key range seeded before the load started, so the load's own
 * checks are not disturbed.
 */
import type { RowDataPacket } from 'mysql2/promise'
import { DIMENSIONS, DualWriteStore, qualified, quoteIdent, StageWatcher, silentLogger, type Runtime } from '../../src/index.js'

/** What the deleter did. */
export interface DeleterReport {
  readonly acknowledged: readonly string[]
  readonly failed: number
}

/** A running deleter; `stop()` ends it and closes its watcher. */
export interface Deleter {
  stop(): Promise<DeleterReport>
}

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((r) => { const t = setTimeout(r, ms); signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true }) })

/** The seeded key range of legacy; read before the load starts, so it holds no order the load created. */
export async function seededRange(rt: Runtime): Promise<{ lo: string; hi: string }> {
  const { legacy } = rt.config
  const pk = quoteIdent(legacy.primaryKey)
  const [bounds] = await rt.legacy().query<RowDataPacket[]>(`SELECT CAST(MIN(${pk}) AS CHAR) AS lo, CAST(MAX(${pk}) AS CHAR) AS hi FROM ${qualified(legacy.database, legacy.table)}`)
  return { lo: String(bounds[0]?.lo ?? '0'), hi: String(bounds[0]?.hi ?? '0') }
}

/**
 * Picks up to `n` seeded order ids from legacy (a keyset walk from a random
 * start, not a table scan into memory), only within `range`: the load's own
 * orders (new-rule ids, above every seeded one) are never picked, else a
 * delete would count as a lost acknowledged order in the load's check.
 */
async function sampleSeeded(rt: Runtime, n: number, random: () => number, range: { lo: string; hi: string }): Promise<string[]> {
  const { legacy } = rt.config
  const pk = quoteIdent(legacy.primaryKey)
  const lo = BigInt(range.lo)
  const hi = BigInt(range.hi)
  const start = lo + (((hi - lo) * BigInt(Math.floor(random() * 1000))) / 1000n)
  const [rows] = await rt.legacy().query<RowDataPacket[]>(`SELECT CAST(${pk} AS CHAR) AS id FROM ${qualified(legacy.database, legacy.table)} WHERE ${pk} >= ? AND ${pk} <= ? ORDER BY ${pk} LIMIT ?`, [start.toString(), range.hi, n])
  return rows.map((r) => String(r.id))
}

/** Starts deleting one seeded order about every `everyMs` (default 250 ms). */
export async function startDeleter(rt: Runtime, o: { instanceId: string; random: () => number; seeded: { lo: string; hi: string }; everyMs?: number; log: (line: string) => void }): Promise<Deleter> {
  const watcher = new StageWatcher(rt, { instanceId: o.instanceId, logger: silentLogger })
  await watcher.start()
  const store = new DualWriteStore({ runtime: rt, stage: watcher, logger: silentLogger })
  const candidates = await sampleSeeded(rt, 5_000, o.random, o.seeded)
  const acknowledged: string[] = []
  let failed = 0
  const ac = new AbortController()
  const loop = (async () => {
    while (!ac.signal.aborted && candidates.length > 0) {
      const id = candidates.splice(Math.floor(o.random() * candidates.length), 1)[0]!
      try {
        await store.delete(id)
        acknowledged.push(id)
      } catch (err) {
        // Not acknowledged (a fence refusal at a flip, legacy cut by a fault): the order may or may not be gone; it is not checked.
        failed++
        if (failed <= 5) o.log(`  deleter: delete ${id} not acknowledged: ${(err as Error).message}`)
      }
      await sleep(o.everyMs ?? 250, ac.signal)
    }
  })()
  return {
    async stop() {
      ac.abort()
      await loop
      await store.flush()
      await watcher.close()
      return { acknowledged, failed }
    },
  }
}

/** Every acknowledged delete that is alive anywhere: legacy, or any shard table of either dimension. */
export async function checkDeletedStayDeleted(rt: Runtime, ids: readonly string[]): Promise<{ checked: number; alive: { id: string; where: string }[] }> {
  const alive: { id: string; where: string }[] = []
  if (ids.length === 0) return { checked: 0, alive }
  const pk = quoteIdent(rt.config.legacy.primaryKey)
  const places = [{ pool: rt.legacy(), database: rt.config.legacy.database, table: rt.config.legacy.table, name: 'legacy' }, ...DIMENSIONS.flatMap((d) => rt.config.dimensions[d].shards.map((p) => ({ pool: rt.host(p.host), database: p.database, table: p.table, name: `${d} shard ${p.shard}` })))]
  for (const p of places) {
    for (let i = 0; i < ids.length; i += 2_000) {
      const [rows] = await p.pool.query<RowDataPacket[]>(`SELECT CAST(${pk} AS CHAR) AS id FROM ${qualified(p.database, p.table)} WHERE ${pk} IN (?)`, [ids.slice(i, i + 2_000)])
      for (const r of rows) alive.push({ id: String(r.id), where: p.name })
    }
  }
  return { checked: ids.length, alive }
}
