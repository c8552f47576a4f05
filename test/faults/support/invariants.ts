/**
 * The invariants every fault scenario checks afterwards (issue 7):
 * - every acknowledged order exists exactly once in legacy (while legacy is
 *   written) and exactly once in each dimension, in the shard its key names,
 *   with the same version everywhere; an order deleted with an acknowledgement
 *   exists nowhere; any row nobody wrote (a resurrection) is a failure;
 * - no order id was acknowledged twice;
 * - the stage in Redis, the durable copy, every fence and every live
 *   instance agree;
 * - every primary commit passed its fence at a version whose stage names
 *   that side as the write primary (never two primaries).
 * Each check throws an Error listing every violation it found.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { Runtime } from '../../../src/runtime/runtime.js'
import { qualified, quoteIdent } from '../../../src/runtime/mysql.js'
import { poolFor } from '../../../src/dualwrite/connections.js'
import { legacyLocation, locationKey, shardLocation, type Location } from '../../../src/dualwrite/placement.js'
import type { PrimaryWriteContext } from '../../../src/dualwrite/store.js'
import { stagePolicy, type StageState } from '../../../src/cutover/stages.js'
import { readFences } from '../../../src/cutover/fence.js'
import { readDurableStage, readHistory, readLiveInstances, readRedisStage } from '../../../src/cutover/switch-store.js'
import { physicalRow } from '../../integration/dualwrite-support.js'

/** What the tests know about one order id. */
export interface OrderFate {
  readonly userId: string
  readonly merchantId: string
  /**
   * `acked`: the last write the client saw succeed left it existing;
   * `deleted`: an acknowledged delete was its last write;
   * `unknown`: the last write failed in a way that may or may not have
   * committed (a crash after commit): it exists in every copy or in none.
   */
  state: 'acked' | 'deleted' | 'unknown'
}

/** Order id -> fate; ids are unique by construction (a Map), see {@link ackOnce}. */
export type OrderLedger = Map<string, OrderFate>

/**
 * Records an acknowledged insert; an id acknowledged twice is the
 * "id issued twice" violation and throws at once.
 */
export function ackOnce(ledger: OrderLedger, orderId: string, fate: Omit<OrderFate, 'state'>): void {
  const had = ledger.get(orderId)
  if (had && had.state !== 'unknown') throw new Error(`order id ${orderId} acknowledged twice (issued twice?)`)
  ledger.set(orderId, { ...fate, state: 'acked' })
}

async function rowsAt(rt: Runtime, l: Location): Promise<Map<string, { version: number; user: string; merchant: string }>> {
  const u = rt.config.legacy.userColumn
  const m = rt.config.legacy.merchantColumn
  const [rows] = await poolFor(rt, l.host).query<RowDataPacket[]>(`SELECT order_id, version, ${quoteIdent(u)} AS u, ${quoteIdent(m)} AS m FROM ${qualified(l.database, l.table)}`)
  return new Map(rows.map((r) => [String(r.order_id), { version: Number(r.version), user: String(r.u), merchant: String(r.m) }]))
}

function distinctLocations(rt: Runtime, side: 'user' | 'merchant'): Location[] {
  const seen = new Map<string, Location>()
  for (const p of rt.config.dimensions[side].shards) {
    const l: Location = { side, host: p.host, database: p.database, table: p.table }
    seen.set(locationKey(l), l)
  }
  return [...seen.values()]
}

/**
 * Every order of `ledger` exists exactly once per side (legacy only when
 * `legacy` is true), in the right shard, at one version; deleted ones
 * nowhere; unknown ones everywhere or nowhere; no row outside the ledger.
 * Returns the number of orders found.
 */
export async function assertOrdersExactlyOnce(rt: Runtime, ledger: OrderLedger, opts: { legacy: boolean; adoptLegacyRows?: boolean; history?: (orderId: string) => string }): Promise<{ present: number; adopted: number }> {
  const problems: string[] = []
  const sides: Array<{ side: 'legacy' | 'user' | 'merchant'; copies: Map<string, Array<{ loc: string; version: number }>> }> = []
  const scan = async (side: 'legacy' | 'user' | 'merchant', locs: Location[]) => {
    const copies = new Map<string, Array<{ loc: string; version: number }>>()
    for (const l of locs) for (const [id, r] of await rowsAt(rt, l)) copies.set(id, [...(copies.get(id) ?? []), { loc: locationKey(l), version: r.version }])
    sides.push({ side, copies })
  }
  if (opts.legacy) await scan('legacy', [legacyLocation(rt.config)])
  await scan('user', distinctLocations(rt, 'user'))
  await scan('merchant', distinctLocations(rt, 'merchant'))
  // Server-assigned ids of writes whose response was lost (the instance died): a row on the
  // primary (legacy) the test never saw acknowledged is an unknown outcome, all-or-nothing.
  let adopted = 0
  if (opts.adoptLegacyRows) {
    for (const [id, r] of await rowsAt(rt, legacyLocation(rt.config))) {
      if (ledger.has(id)) continue
      ledger.set(id, { userId: r.user, merchantId: r.merchant, state: 'unknown' })
      adopted++
    }
  }
  let present = 0
  for (const [id, fate] of ledger) {
    const found = sides.map((s) => s.copies.get(id) ?? [])
    const everywhere = found.every((f) => f.length > 0)
    const nowhere = found.every((f) => f.length === 0)
    // Where it is (side and version) and, when the test recorded them, its primary commits: enough to read a failure.
    const seen = () => `; found ${sides.map((s, i) => `${s.side} ${found[i]!.map((x) => `v${x.version}`).join('/') || '-'}`).join(', ')}${opts.history ? `; ${opts.history(id)}` : ''}`
    if (fate.state === 'deleted' && !nowhere) problems.push(`deleted order ${id} still in ${sides.filter((_, i) => found[i]!.length).map((s) => s.side).join(', ')}${seen()}`)
    if (fate.state === 'acked' && !everywhere) problems.push(`acknowledged order ${id} missing from ${sides.filter((_, i) => !found[i]!.length).map((s) => s.side).join(', ')}${seen()}`)
    if (fate.state === 'unknown' && !everywhere && !nowhere) problems.push(`order ${id} (outcome unknown) only in ${sides.filter((_, i) => found[i]!.length).map((s) => s.side).join(', ')}`)
    if (everywhere) present++
    sides.forEach((s, i) => {
      const f = found[i]!
      if (f.length > 1) problems.push(`order ${id} is ${f.length} times in the ${s.side} side (${f.map((x) => x.loc).join(', ')})`)
      if (f.length === 1 && s.side !== 'legacy') {
        const want = locationKey(shardLocation(rt.config, s.side, s.side === 'user' ? fate.userId : fate.merchantId))
        if (f[0]!.loc !== want) problems.push(`order ${id} in ${f[0]!.loc}, expected ${want}`)
      }
    })
    const versions = new Set(found.flat().map((x) => x.version))
    if (versions.size > 1) problems.push(`order ${id} has versions ${[...versions].join('/')} across copies`)
  }
  for (const s of sides) for (const id of s.copies.keys()) if (!ledger.has(id)) problems.push(`row ${id} in the ${s.side} side was never written by the test (resurrected or stray)`)
  if (problems.length) throw new Error(`order invariants violated (${problems.length}):\n  ${problems.slice(0, 30).join('\n  ')}`)
  return { present, adopted }
}

/**
 * Redis, the durable copy and every fence agree (open, same version), and
 * every live instance (heartbeat) and every given watcher follows it.
 * Returns the agreed state.
 */
export async function assertStageAgreement(rt: Runtime, watchers: ReadonlyArray<{ current(): StageState | undefined }> = []): Promise<StageState> {
  const [redis, durable, fences, live] = await Promise.all([readRedisStage(rt.redis(), rt.config.redis.keyPrefix), readDurableStage(rt), readFences(rt), readLiveInstances(rt.redis(), rt.config.redis.keyPrefix)])
  const problems: string[] = []
  if (!redis) problems.push('Redis holds no stage')
  if (!durable) problems.push('no durable stage')
  const d = durable?.state
  if (redis && d && (redis.stage !== d.stage || redis.version !== d.version || redis.readPercent !== d.readPercent)) problems.push(`Redis ${redis.stage}@${redis.readPercent} v${redis.version} != durable ${d.stage}@${d.readPercent} v${d.version}`)
  for (const f of fences) if (f.state !== 'open' || f.version !== d?.version) problems.push(`fence ${f.primary} ${f.state} v${f.version}`)
  for (const a of live) if (a.version !== d?.version) problems.push(`live instance ${a.instanceId} at v${a.version}`)
  for (const w of watchers) if (w.current()?.version !== d?.version) problems.push(`a watcher follows v${w.current()?.version}`)
  if (problems.length) throw new Error(`stage disagreement: ${problems.join('; ')}`)
  return d!
}

/** Open fences never disagree on the version (two open versions could mean two primaries). */
export async function assertOneOpenVersion(rt: Runtime): Promise<void> {
  const open = (await readFences(rt)).filter((f) => f.state === 'open')
  const versions = new Set(open.map((f) => f.version))
  if (versions.size > 1) throw new Error(`fences open at different versions: ${open.map((f) => `${f.primary} v${f.version}`).join(', ')}`)
}

/** One primary commit: which side, at which fence version. */
export interface PrimaryCommit {
  readonly orderId: string
  readonly side: 'legacy' | 'user'
  readonly fenceVersion: number
}

/**
 * An `onPrimaryWrite` hook for the store that records, inside the primary
 * transaction, the fence version the write passed (the fence row is share-
 * locked by the store, so it cannot move before the commit). `commits` holds
 * the transactions that reached their hook; a rolled-back one is harmless to
 * the check (it could only add a violation that did not happen if the write
 * was refused, and the fence refuses before the hook).
 */
export function primaryCommitRecorder(): { commits: PrimaryCommit[]; hook: (ctx: PrimaryWriteContext) => Promise<void> } {
  const commits: PrimaryCommit[] = []
  return {
    commits,
    async hook(ctx) {
      const [rows] = await ctx.conn.query<RowDataPacket[]>(`SELECT stage_version FROM ${qualified(ctx.database, 'shardkit_fence')} WHERE id = 1`)
      commits.push({ orderId: String(ctx.row.order_id), side: ctx.side, fenceVersion: Number(rows[0]?.stage_version ?? -1) })
    },
  }
}

/**
 * Never two primaries: every commit's fence version belongs to a stage (from
 * the audit history, the durable copy, and `known`: e.g. what a watcher
 * applied; a move killed after opening its fences has no audit row) whose write primary is the side
 * the commit went to, and no version saw commits on both sides.
 */
export async function assertSinglePrimary(rt: Runtime, commits: readonly PrimaryCommit[], known: readonly StageState[] = []): Promise<void> {
  const stageAt = new Map<number, StageState>()
  for (const s of known) stageAt.set(s.version, s)
  for (const h of await readHistory(rt, { limit: 1000 })) if (h.to && h.outcome !== 'refused') stageAt.set(h.to.version, h.to)
  const d = await readDurableStage(rt)
  if (d) stageAt.set(d.state.version, d.state)
  const sidesAt = new Map<number, Set<string>>()
  const problems: string[] = []
  for (const c of commits) {
    sidesAt.set(c.fenceVersion, (sidesAt.get(c.fenceVersion) ?? new Set()).add(c.side))
    const s = stageAt.get(c.fenceVersion)
    if (!s) problems.push(`order ${c.orderId} committed on ${c.side} at v${c.fenceVersion}, a version no move published`)
    else if (stagePolicy(s).writePrimary !== c.side) problems.push(`order ${c.orderId} committed on ${c.side} at v${c.fenceVersion} (${s.stage}, whose primary is ${stagePolicy(s).writePrimary})`)
  }
  for (const [v, sides] of sidesAt) if (sides.size > 1) problems.push(`v${v} saw commits on ${[...sides].join(' and ')}`)
  if (problems.length) throw new Error(`two primaries (${problems.length}):\n  ${problems.slice(0, 20).join('\n  ')}`)
}

/** The sides (legacy, user, merchant) whose table holds the order now, read straight from the physical tables. */
export async function sidesHolding(rt: Runtime, orderId: string, keys: { userId: string; merchantId: string }): Promise<string[]> {
  const out: string[] = []
  for (const l of [legacyLocation(rt.config), shardLocation(rt.config, 'user', keys.userId), shardLocation(rt.config, 'merchant', keys.merchantId)]) {
    if (await physicalRow(poolFor(rt, l.host), l, orderId)) out.push(l.side)
  }
  return out
}
