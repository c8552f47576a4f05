/**
 * The soak's database stalls: faults that do not break a server but make it
 * slow in the ways a busy production host is slow. Copies and replays under
 * them must time out on the client, be killed on the server, land in the
 * journal and be drained later; none may land late (docs/reliability.md):
 * - `locking-read`: one session holds `SELECT ... FOR UPDATE` over a whole
 *   shard table for 3-5 s (a report or a careless `mysql` prompt);
 * - `mdl-stall`: one session holds an open transaction that read a shard
 *   table, and `ALTER TABLE ... FORCE` queues behind it for its exclusive
 *   metadata lock, so every later statement on that table queues behind the
 *   ALTER (the classic online-DDL pile-up) for 3-5 s; the ALTER rebuilds the
 *   table with the same definition, so nothing changes;
 * - `host-stop`: SIGSTOP the extra shard host (a real mariadbd) for 3 s, then
 *   SIGCONT: connections stay open and nothing answers.
 */
import type { Pool, PoolConnection } from 'mysql2/promise'
import { DIMENSIONS, type Runtime } from '../../src/index.js'
import type { MariadbInstance } from '../../test/support/mariadb-instance.js'

export const DB_STALL_KINDS = ['locking-read', 'mdl-stall', 'host-stop'] as const
export type DbStallKind = (typeof DB_STALL_KINDS)[number]

/** One physical shard table: where it is and what it is called. */
export interface ShardTable {
  readonly pool: Pool
  readonly database: string
  readonly table: string
}

/** What a stall acts on. */
export interface StallTarget {
  readonly tables: readonly ShardTable[]
  /** The extra host `host-stop` pauses; without it `host-stop` is not offered. */
  readonly extraHost?: MariadbInstance
  readonly random: () => number
}

/** What one stall did. */
export interface StallRecord {
  readonly kind: DbStallKind
  readonly at: string
  readonly survived: boolean
  readonly detail: string
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Every physical shard table of the fleet (both dimensions), with its host's pool. */
export function shardTablesOf(rt: Runtime, hosts?: readonly string[]): ShardTable[] {
  return DIMENSIONS.flatMap((dim) => rt.config.dimensions[dim].shards.filter((p) => !hosts || hosts.includes(p.host)).map((p) => ({ pool: rt.host(p.host), database: p.database, table: p.table })))
}

/** A connection of its own (not one a copy could be waiting for): the stall must not starve the pool it stalls. */
async function ownConnection(t: ShardTable): Promise<PoolConnection> {
  return t.pool.getConnection()
}

const pick = <T>(xs: readonly T[], random: () => number): T => xs[Math.floor(random() * xs.length)]!
const qid = (t: ShardTable) => `\`${t.database}\`.\`${t.table}\``

/** Holds `FOR UPDATE` over a whole shard table for 3-5 s, then rolls back. */
async function lockingRead(t: StallTarget): Promise<StallRecord> {
  const at = new Date().toISOString()
  const table = pick(t.tables, t.random)
  const ms = 3_000 + Math.floor(t.random() * 2_000)
  const c = await ownConnection(table)
  try {
    await c.query('START TRANSACTION')
    const [rows] = await c.query(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${qid(table)} FOR UPDATE) AS locked`)
    await sleep(ms)
    await c.query('ROLLBACK')
    return { kind: 'locking-read', at, survived: true, detail: `held FOR UPDATE on ${qid(table)} (${(rows as { n: number }[])[0]?.n} rows) for ${ms} ms` }
  } finally {
    c.release()
  }
}

/** An open transaction holds the table's metadata lock; an ALTER queues behind it, and everything else behind the ALTER. */
async function mdlStall(t: StallTarget): Promise<StallRecord> {
  const at = new Date().toISOString()
  const table = pick(t.tables, t.random)
  const ms = 3_000 + Math.floor(t.random() * 2_000)
  const holder = await ownConnection(table)
  const alterer = await ownConnection(table)
  try {
    await holder.query('START TRANSACTION')
    await holder.query(`SELECT COUNT(*) FROM ${qid(table)}`)
    await alterer.query('SET SESSION lock_wait_timeout = 60')
    const alter = alterer.query(`ALTER TABLE ${qid(table)} FORCE`)
    alter.catch(() => undefined)
    await sleep(ms)
    await holder.query('COMMIT')
    const started = Date.now()
    await alter
    return { kind: 'mdl-stall', at, survived: true, detail: `ALTER TABLE ${qid(table)} FORCE queued behind an open transaction for ${ms} ms, then ran in ${Date.now() - started} ms` }
  } finally {
    holder.release()
    await alterer.query('SET SESSION lock_wait_timeout = DEFAULT').catch(() => undefined)
    alterer.release()
  }
}

/** SIGSTOPs the extra shard host for 3 s, then SIGCONTs it. */
async function hostStop(t: StallTarget): Promise<StallRecord> {
  const at = new Date().toISOString()
  if (!t.extraHost) return { kind: 'host-stop', at, survived: false, detail: 'no extra shard host to pause (the soak starts one unless --no-extra-host)' }
  const ms = 3_000
  t.extraHost.pause()
  try {
    await sleep(ms)
  } finally {
    t.extraHost.resume()
  }
  return { kind: 'host-stop', at, survived: true, detail: `SIGSTOP shard host 127.0.0.1:${t.extraHost.port} for ${ms} ms, then SIGCONT` }
}

/** Injects one stall of `kind`; a stall that could not be set up is reported, not thrown. */
export async function injectStall(kind: DbStallKind, t: StallTarget): Promise<StallRecord> {
  try {
    switch (kind) {
      case 'locking-read':
        return await lockingRead(t)
      case 'mdl-stall':
        return await mdlStall(t)
      case 'host-stop':
        return await hostStop(t)
    }
  } catch (err) {
    return { kind, at: new Date().toISOString(), survived: false, detail: `could not inject: ${(err as Error).message}` }
  }
}
