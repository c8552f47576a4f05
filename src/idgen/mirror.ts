/**
 * A second record of each worker's high-water and holder, kept in Redis, so
 * that a control-database failover that loses the last lease write cannot
 * make two generators issue the same ids.
 *
 * Why a second store: the lease row alone is only as durable as the control
 * database's replication. With asynchronous replication a failover can roll
 * the row back to an older copy; a new holder that trusts it starts below
 * what the old holder reserved and is still issuing (issue 17: 12,573 of
 * 12,800 ids were the same). The mirror makes a reservation count only once
 * BOTH stores recorded it, and fences the old holder in Redis at the moment
 * the new one claims the worker:
 *
 * - `claim` (a new holder, after it won the row) atomically reads the
 *   worker's high-water, records the new holder's token and raises the
 *   high-water to its first reservation; the new holder starts strictly
 *   above max(row, mirror);
 * - `raise` (a renewal) raises the high-water only while the token is still
 *   the caller's; a holder uses a new reservation only after both the row and
 *   the mirror accepted it. So every reservation an old holder may use was in
 *   the mirror before a new holder's claim read it, or was refused after it;
 * - `release` sets the high-water to what the holder says the next one must
 *   start after: its last id time, or the end of its wait-out (below).
 *
 * When the claim finds no record (Redis lost its data, or first use), the
 * grant says `highWaterUncertain` and the generator waits out any previous
 * holder's possible lifetime before issuing (see generator.ts).
 *
 * Keys: `<prefix>idgen:w:<worker>`, a hash {token, hw, owner}. No expiry: a
 * high-water must outlive every lease.
 */
import type { Redis } from 'ioredis'
import { ShardkitError, isShardkitError } from '../errors.js'
import type { LeaseGrant, LeaseRequest, LeaseStore } from './lease.js'
import { WORKER_COUNT } from './lease.js'

// KEYS[1] worker key; ARGV[1] token, ARGV[2] reservation (ms), ARGV[3] owner.
// Returns {found (0/1), previous high-water as a string}.
const CLAIM = `
local hw = redis.call('HGET', KEYS[1], 'hw')
if hw == false then
  redis.call('HSET', KEYS[1], 'token', ARGV[1], 'hw', ARGV[2], 'owner', ARGV[3])
  return {0, '0'}
end
if tonumber(ARGV[2]) > tonumber(hw) then redis.call('HSET', KEYS[1], 'hw', ARGV[2]) end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'owner', ARGV[3])
return {1, hw}
`

// KEYS[1]; ARGV[1] token, ARGV[2] reservation, ARGV[3] owner.
// A missing record (Redis lost its data) is recreated under the caller: no
// claim happened since the loss, or the record would exist.
const RAISE = `
local t = redis.call('HGET', KEYS[1], 'token')
if t == false then
  redis.call('HSET', KEYS[1], 'token', ARGV[1], 'hw', ARGV[2], 'owner', ARGV[3])
  return 'recreated'
end
if t ~= ARGV[1] then return 'lost' end
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], 'hw') or '0') then redis.call('HSET', KEYS[1], 'hw', ARGV[2]) end
return 'ok'
`

// KEYS[1]; ARGV[1] token, ARGV[2] the high-water the next holder starts after.
// Set, not lowered only: the holder knows best (its last id, or where its
// wait-out ends when it closed during one, which may be above its reservation).
const RELEASE = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hw', ARGV[2], 'token', '', 'owner', '')
return 1
`

/** What a claim found. */
export interface MirrorClaim {
  /** False when the mirror had no record of the worker (Redis lost its data, or first use). */
  readonly found: boolean
  /** The recorded high-water (Unix ms) before this claim; 0 when not found. */
  readonly previousHighWaterMs: number
}

/** How a {@link RedisLeaseMirror} is made. */
export interface RedisLeaseMirrorOptions {
  /** A client the mirror borrows (the runtime's `redis()`); it never closes it. */
  readonly redis: Redis
  /** `config.redis.keyPrefix`. */
  readonly keyPrefix: string
}

function redisError(op: string, worker: number, err: unknown): ShardkitError {
  return new ShardkitError('REDIS_ERROR', `id-generator high-water ${op} for worker ${worker} failed in Redis; check that Redis answers (config redis.url). No id is issued on a reservation Redis did not record`, { worker }, { cause: err, retryable: true })
}

/** The Redis half of a worker's high-water. Use through {@link MirroredLeaseStore}. */
export class RedisLeaseMirror {
  private readonly redis: Redis
  private readonly prefix: string

  constructor(o: RedisLeaseMirrorOptions) {
    if (typeof o.keyPrefix !== 'string') throw new ShardkitError('USAGE', 'keyPrefix must be a string (config redis.keyPrefix)', { option: 'keyPrefix' })
    this.redis = o.redis
    this.prefix = o.keyPrefix
  }

  /** The key of one worker's record. */
  key(worker: number): string {
    return `${this.prefix}idgen:w:${worker}`
  }

  /** Takes over the worker's record: returns what it held, records `token` and raises the high-water to `reserveUntilMs`. @throws ShardkitError `REDIS_ERROR` */
  async claim(worker: number, token: string, reserveUntilMs: number, owner: string): Promise<MirrorClaim> {
    try {
      const [found, hw] = (await this.redis.eval(CLAIM, 1, this.key(worker), token, String(reserveUntilMs), owner)) as [number, string]
      return { found: Number(found) === 1, previousHighWaterMs: Number(hw) }
    } catch (err) {
      throw redisError('claim', worker, err)
    }
  }

  /** Raises the high-water while `token` still holds the record. @throws ShardkitError `ID_LEASE_LOST` when another holder claimed it; `REDIS_ERROR` */
  async raise(worker: number, token: string, reserveUntilMs: number, owner: string): Promise<'ok' | 'recreated'> {
    let out: string
    try {
      out = String(await this.redis.eval(RAISE, 1, this.key(worker), token, String(reserveUntilMs), owner))
    } catch (err) {
      throw redisError('renewal', worker, err)
    }
    if (out === 'lost') {
      throw new ShardkitError('ID_LEASE_LOST', `worker ${worker} was claimed by another generator in the Redis high-water mirror (the control database may have failed over and lost this lease's last write); open a new generator`, { worker })
    }
    return out as 'ok' | 'recreated'
  }

  /** Sets the high-water to `highWaterMs` and clears the holder, if `token` still holds it. @throws ShardkitError `REDIS_ERROR` */
  async release(worker: number, token: string, highWaterMs: number): Promise<void> {
    try {
      await this.redis.eval(RELEASE, 1, this.key(worker), token, String(highWaterMs))
    } catch (err) {
      throw redisError('release', worker, err)
    }
  }

  /** Every worker's recorded high-water (Unix ms); workers without a record are absent. @throws ShardkitError `REDIS_ERROR` */
  async highWaters(): Promise<Map<number, number>> {
    const out = new Map<number, number>()
    try {
      const p = this.redis.pipeline()
      for (let w = 0; w < WORKER_COUNT; w++) p.hget(this.key(w), 'hw')
      const res = (await p.exec()) ?? []
      res.forEach(([err, v], w) => {
        if (!err && v !== null && v !== undefined) out.set(w, Number(v))
      })
    } catch (err) {
      throw redisError('read', -1, err)
    }
    return out
  }
}

/**
 * A {@link LeaseStore} that keeps every reservation in the control database
 * AND the Redis mirror: the guarantee of issue 17 (see the README, "Order
 * ids"). Wraps the real store; pools and clients stay the caller's.
 * @example
 * const store = new MirroredLeaseStore(new MysqlLeaseStore(rt.controlServer(), db), new RedisLeaseMirror({ redis: rt.redis(), keyPrefix }))
 * const gen = await openIdGenerator({ store })
 */
export class MirroredLeaseStore implements LeaseStore {
  private readonly owners = new Map<string, string>()

  constructor(
    readonly inner: LeaseStore,
    readonly mirror: RedisLeaseMirror,
  ) {}

  async acquire(req: LeaseRequest): Promise<LeaseGrant> {
    // Prefer workers whose high-water, by either store, is oldest: a row the
    // failover rolled back still shows its holder's reservation here.
    const hints = req.worker === undefined && req.highWaterHints === undefined ? await this.mirror.highWaters() : req.highWaterHints
    const grant = await this.inner.acquire({ ...req, highWaterHints: hints })
    let claim: MirrorClaim
    try {
      claim = await this.mirror.claim(grant.worker, grant.token, grant.reservedUntilMs, req.owner.slice(0, 128))
    } catch (err) {
      await this.inner.release(grant.worker, grant.token, grant.highWaterMs).catch(() => undefined)
      throw err
    }
    this.owners.set(grant.token, req.owner.slice(0, 128))
    const highWaterMs = Math.max(grant.highWaterMs, claim.found ? claim.previousHighWaterMs : 0)
    // Both stores hold at least grant.reservedUntilMs; above it the generator renews first.
    return { ...grant, highWaterMs, highWaterUncertain: !claim.found || grant.highWaterUncertain === true }
  }

  async renew(worker: number, token: string, ttlMs: number, reserveUntilMs: number): Promise<void> {
    try {
      await this.inner.renew(worker, token, ttlMs, reserveUntilMs)
      await this.mirror.raise(worker, token, reserveUntilMs, this.owners.get(token) ?? '')
    } catch (err) {
      // A lost generator never releases: forget its owner name here.
      if (isShardkitError(err, 'ID_LEASE_LOST')) this.owners.delete(token)
      throw err
    }
  }

  async release(worker: number, token: string, highWaterMs: number): Promise<void> {
    this.owners.delete(token)
    try {
      await this.inner.release(worker, token, highWaterMs)
    } finally {
      await this.mirror.release(worker, token, highWaterMs).catch((err: unknown) => {
        if (!isShardkitError(err, 'REDIS_ERROR')) throw err
        // The record keeps the higher reservation: safe, the next holder only starts later.
      })
    }
  }
}
