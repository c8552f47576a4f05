/**
 * The cutover run lock: one `cutover advance|rollback` (and recovery) at a
 * time, held in the control database (`shardkit_run_lock`), the same place
 * as the durable stage, so it survives what Redis loses (Redis here keeps
 * nothing on disk: an emptied Redis once let a second move start beside a
 * running one, and two primaries ran at one stage version).
 *
 * The row is taken by compare-and-set once its expiry has passed, judged by
 * the database clock (holders on machines with skewed clocks agree); it is
 * renewed while held and released by token. A holder that cannot renew in
 * time counts its lock as lost and checks `assertHeld()` before every step
 * that changes the fleet; the commit point itself is conditional on the
 * token (switch-store.ts, `writeDurableStage`).
 */
import { hostname, userInfo } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import type { TableDef } from '../control/tables.js'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { isMissingTable } from '../runtime/mysql-errors.js'

/** The control table of run locks (one row per lock name). */
export const RUN_LOCK_TABLE = 'shardkit_run_lock'

export const RUN_LOCK_TABLE_DEF: TableDef = {
  name: RUN_LOCK_TABLE,
  owner: 'cutover',
  // One row per lock name; `token` '' means free. Expiry in database time (UTC).
  ddl: (db) => `CREATE TABLE IF NOT EXISTS ${qualified(db, RUN_LOCK_TABLE)} (
  name VARCHAR(32) NOT NULL,
  token VARCHAR(32) NOT NULL DEFAULT '',
  actor VARCHAR(128) NOT NULL DEFAULT '',
  host VARCHAR(255) NOT NULL DEFAULT '',
  pid INT UNSIGNED NOT NULL DEFAULT 0,
  since DATETIME(3) NULL,
  expires_at DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:01.000',
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
}

/** The cutover's lock name. */
export const CUTOVER_LOCK = 'cutover'

/** Who runs cutover commands here (SHARDKIT_ACTOR, else user@host). */
export function defaultActor(env: Readonly<Record<string, string | undefined>> = {}): string {
  if (env.SHARDKIT_ACTOR) return env.SHARDKIT_ACTOR
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry (containers): keep 'unknown'
  }
  return `${user}@${hostname()}`
}

/** A held run lock; `release()` is idempotent. */
export interface RunLock {
  readonly token: string
  /** False once a renewal found the lock taken or could not reach the database in time. */
  readonly held: boolean
  /**
   * @throws ShardkitError `CUTOVER_ABORTED` when the lock was lost: the move must stop changing the fleet
   */
  assertHeld(): Promise<void>
  release(): Promise<void>
}

/** Who holds a lock. */
export interface RunLockHolder {
  readonly actor: string
  readonly host: string
  readonly pid: number
  readonly since: string
}

function table(rt: Runtime): string {
  return qualified(rt.config.control.database, RUN_LOCK_TABLE)
}

function missing(rt: Runtime, err: unknown): ShardkitError {
  return new ShardkitError('PRECONDITION_FAILED', `the cutover tables do not exist in ${rt.config.control.database}; run \`shardctl provision\` first`, { database: rt.config.control.database }, { cause: err })
}

/**
 * Takes the cutover run lock (control database, renewed while held, expires
 * `ttlMs` after its last renewal by the database clock if the holder dies).
 * @throws ShardkitError `ALREADY_RUNNING` naming the holder when another move runs; `PRECONDITION_FAILED` before `provision`
 */
export async function acquireRunLock(rt: Runtime, actor: string, ttlMs = 30_000, name = CUTOVER_LOCK): Promise<RunLock> {
  const control = rt.control()
  const token = randomBytes(8).toString('hex')
  let res: ResultSetHeader
  try {
    await control.query(`INSERT IGNORE INTO ${table(rt)} (name) VALUES (?)`, [name])
    ;[res] = await control.query<ResultSetHeader>(
      `UPDATE ${table(rt)} SET token = ?, actor = ?, host = ?, pid = ?, since = UTC_TIMESTAMP(3), expires_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND
        WHERE name = ? AND (token = '' OR expires_at < UTC_TIMESTAMP(3))`,
      [token, actor.slice(0, 128), hostname().slice(0, 255), process.pid, ttlMs * 1000, name],
    )
  } catch (err) {
    if (isMissingTable(err)) throw missing(rt, err)
    throw err
  }
  if (res.affectedRows !== 1) {
    const holder = await readRunLock(rt, name)
    throw new ShardkitError(
      'ALREADY_RUNNING',
      `another cutover move is running (${holder ? `${holder.actor} on ${holder.host} pid ${holder.pid} since ${holder.since}` : 'holder unknown'}); wait for it to finish, then check \`shardctl cutover status\``,
      holder ? { actor: holder.actor, host: holder.host, pid: holder.pid } : {},
    )
  }
  let held = true
  let released = false
  let lastRenewed = performance.now()
  const renew = async (): Promise<boolean> => {
    const [r] = await control.query<ResultSetHeader>(`UPDATE ${table(rt)} SET expires_at = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND WHERE name = ? AND token = ?`, [ttlMs * 1000, name, token])
    return r.affectedRows === 1
  }
  const timer = setInterval(() => {
    renew().then(
      (ok) => {
        if (ok) lastRenewed = performance.now()
        else if (held) {
          held = false
          rt.logger.error({ name }, 'cutover: the run lock was taken by another holder; this move stops changing the fleet')
        }
      },
      (err) => rt.logger.warn({ err: (err as Error).message }, 'cutover: run lock renewal failed'),
    )
  }, Math.max(100, Math.floor(ttlMs / 3)))
  timer.unref()
  return {
    token,
    get held() {
      return held && performance.now() - lastRenewed < ttlMs / 2
    },
    async assertHeld() {
      // A renewal older than half the TTL may not be in force any more: renew now, or count it lost.
      if (held && performance.now() - lastRenewed >= ttlMs / 3) {
        const ok = await renew().catch(() => false)
        if (ok) lastRenewed = performance.now()
        else held = false
      }
      if (!held) throw new ShardkitError('CUTOVER_ABORTED', 'this move lost the cutover run lock (it expired, or another holder took it); it changed nothing after that point. Check `shardctl cutover status`, then run the move again', { lock: name }, { retryable: true })
    },
    async release() {
      if (released) return
      released = true
      clearInterval(timer)
      await control.query(`UPDATE ${table(rt)} SET token = '', expires_at = '1970-01-01 00:00:01.000' WHERE name = ? AND token = ?`, [name, token])
    },
  }
}

/** Who holds the run lock, if anyone (an expired lock counts as free). */
export async function readRunLock(rt: Runtime, name = CUTOVER_LOCK): Promise<RunLockHolder | undefined> {
  let rows: RowDataPacket[]
  try {
    ;[rows] = await rt.control().query<RowDataPacket[]>(`SELECT actor, host, pid, since FROM ${table(rt)} WHERE name = ? AND token <> '' AND expires_at >= UTC_TIMESTAMP(3)`, [name])
  } catch (err) {
    if (isMissingTable(err)) return undefined
    throw err
  }
  const r = rows[0]
  if (!r) return undefined
  const since = String(r.since)
  return { actor: String(r.actor), host: String(r.host), pid: Number(r.pid), since: since.includes('T') ? since : `${since.replace(' ', 'T')}Z` }
}

/** Ends a lock now, whoever holds it (tests standing in for its expiry; an operator clearing a dead holder's lock). */
export async function expireRunLock(rt: Runtime, name = CUTOVER_LOCK): Promise<void> {
  await rt.control().query(`UPDATE ${table(rt)} SET expires_at = '1970-01-01 00:00:01.000' WHERE name = ?`, [name])
}
