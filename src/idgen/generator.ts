/**
 * The order-id generator: one worker lease, one timeline, ids that carry the
 * user's logical shard.
 *
 * Rules it keeps, whatever the clocks do (the timeline rules are in
 * timeline.ts: time never decreases, bounded borrowing, refusal not waiting):
 * - it starts strictly after the previous holder's high-water;
 * - it stops issuing (`ID_LEASE_LOST`) once its last successful renewal is
 *   older than the TTL minus a margin, measured on the monotonic clock, so it
 *   is silent before the database can hand its worker to anyone else;
 * - when the store cannot vouch for the high-water (`highWaterUncertain`: the
 *   Redis mirror of mirror.ts had no record, so a failover that rolled the
 *   lease row back would go unseen), it issues nothing for one lease TTL plus
 *   `maxLeadMs` of monotonic time after taking the lease. Any previous holder
 *   whose lease write was lost has fenced itself by then (its renewals fail
 *   against the new token), and its last ids were at most `maxLeadMs` ahead of
 *   its clock; so this holder, starting at its own clock, is above them as
 *   long as its clock is not behind the old holder's by more than the fence
 *   margin, and every generator uses the same TTL.
 */
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { ShardkitError, isShardkitError } from '../errors.js'
import { shardOfKey } from '../router/shard-function.js'
import { silentLogger, type Logger } from '../runtime/logger.js'
import { systemClock, type Clock } from './clock.js'
import { ID_EPOCH_MS, MAX_TIME, assertIdSyntax, compareIds, encodeIdUnchecked } from './layout.js'
import type { LeaseGrant, LeaseStore } from './lease.js'
import { IdTimeline, Step, iso } from './timeline.js'

/** How a generator is opened. Defaults match the config's `idgen` section. */
export interface IdGeneratorOptions {
  /** Where the worker lease is taken (a {@link MysqlLeaseStore} on the control database). */
  readonly store: LeaseStore
  readonly clock?: Clock
  /** Lease lifetime without renewal (default 30 000 ms); renewed every third of it. */
  readonly leaseTtlMs?: number
  /** How far the time field may run ahead of the wall clock (default 1 000 ms). */
  readonly maxLeadMs?: number
  /** Stop issuing this long before the lease could expire (default a tenth of the TTL, at least 100 ms). */
  readonly fenceMarginMs?: number
  /** Shown in the lease table (default `hostname:pid`). */
  readonly owner?: string
  /** Take this worker number only (takeover, tests). */
  readonly worker?: number
  /**
   * The legacy id ceiling (`legacy.idCeiling`): refuse to start unless every id
   * this generator can issue is above it, so `classifyId` stays total.
   */
  readonly legacyCeiling?: string
  /** Renew on a timer (default true). With false the caller calls {@link IdGenerator.renew}. */
  readonly autoRenew?: boolean
  readonly logger?: Logger
}

/** A snapshot for logs and dashboards. */
export interface IdGeneratorStatus {
  readonly worker: number
  readonly state: 'active' | 'lost' | 'closed'
  readonly issued: number
  /** The last id time issued, or the previous holder's high-water before the first id (Unix ms). */
  readonly highWaterMs: number
  readonly reservedUntilMs: number
  /** How far the time field is ahead of the wall clock now (0 when it is not). */
  readonly leadMs: number
  /** How long it still waits out a previous holder before its first id (0 when it does not); see `highWaterUncertain`. */
  readonly holdMs: number
}

/** Refusals of the generator itself, beside the timeline's {@link Step} codes. */
const INACTIVE = 10
const FENCED = 11
const HELD = 12

const DEFAULT_TTL_MS = 30_000
const DEFAULT_MAX_LEAD_MS = 1_000

function usage(name: string, message: string): ShardkitError {
  return new ShardkitError('USAGE', `${name} ${message}`, { argument: name })
}

function intIn(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw usage(name, `must be a whole number from ${min} to ${max} (got ${v})`)
  return v
}

/**
 * Takes a worker lease and returns a generator holding it.
 * @throws ShardkitError `ID_WORKERS_EXHAUSTED` when all 256 workers are leased;
 *   `ID_CLOCK_BEHIND` when the previous holder's high-water is more than
 *   `maxLeadMs` ahead of this machine's clock (the lease is given back untouched);
 *   `USAGE` for options out of range
 * @example
 * const gen = await openIdGenerator({ store: new MysqlLeaseStore(pool, 'shardkit_control') })
 * try { const id = gen.nextId('12345') } finally { await gen.close() }
 */
export async function openIdGenerator(opts: IdGeneratorOptions): Promise<IdGenerator> {
  const clock = opts.clock ?? systemClock
  const ttlMs = intIn('leaseTtlMs', opts.leaseTtlMs ?? DEFAULT_TTL_MS, 300, 3_600_000)
  const maxLeadMs = intIn('maxLeadMs', opts.maxLeadMs ?? DEFAULT_MAX_LEAD_MS, 0, 3_600_000)
  const fenceMarginMs = intIn('fenceMarginMs', opts.fenceMarginMs ?? Math.max(100, Math.floor(ttlMs / 10)), 1, Math.floor(ttlMs / 2))
  const owner = opts.owner ?? `${hostname()}:${process.pid}`
  const monoBefore = clock.monoMs()
  const wall = clock.wallMs()
  const grant = await opts.store.acquire({ owner, ttlMs, reserveUntilMs: wall + ttlMs, worker: opts.worker })
  const gen = new IdGenerator(grant, { ...opts, clock, ttlMs, maxLeadMs, fenceMarginMs, monoBefore, monoAfter: clock.monoMs() })
  const now = clock.wallMs()
  const lead = grant.highWaterMs + 1 - now
  if (lead > maxLeadMs) {
    await gen.close()
    throw new ShardkitError(
      'ID_CLOCK_BEHIND',
      `worker ${grant.worker}'s previous holder reserved ids up to ${iso(grant.highWaterMs)}, ${lead} ms ahead of this machine's clock (${iso(now)}) and beyond maxLeadMs ${maxLeadMs}: check this machine's clock (NTP); or, if the control database failed over, that holder may still be running on a lease write the failover lost. Retry after ${iso(grant.highWaterMs - maxLeadMs)}, or open without \`worker\` to take another`,
      { worker: grant.worker, leadMs: lead, maxLeadMs },
      { retryable: true },
    )
  }
  if (grant.highWaterMs + 1 > now) {
    // Starting ahead of the wall clock: the reservation taken with the grant
    // (wall + TTL) may not cover the high-water; extend it from the timeline.
    try {
      await gen.renew()
    } catch (err) {
      await gen.close()
      throw err
    }
  }
  if (opts.legacyCeiling !== undefined) {
    // "0" is a valid ceiling: a legacy table with no rows has no legacy ids.
    if (opts.legacyCeiling !== '0') assertIdSyntax(opts.legacyCeiling, 'legacyCeiling')
    // Ids only grow, so the smallest id at the first possible time bounds them all.
    const first = Math.max(now, grant.highWaterMs + 1) - ID_EPOCH_MS
    const smallest = first >= 0 && first <= MAX_TIME ? encodeIdUnchecked(first, 0, 0, 0) : '0'
    if (compareIds(smallest, opts.legacyCeiling) <= 0) {
      await gen.close()
      throw new ShardkitError('PRECONDITION_FAILED', `new ids would start at ${smallest}, not above the legacy ceiling ${opts.legacyCeiling}: check legacy.idCeiling in the config and this machine's clock`, { worker: grant.worker })
    }
  }
  if (opts.autoRenew ?? true) gen.startRenewing()
  return gen
}

interface Resolved extends IdGeneratorOptions {
  readonly clock: Clock
  readonly ttlMs: number
  readonly maxLeadMs: number
  readonly fenceMarginMs: number
  readonly monoBefore: number
  readonly monoAfter: number
}

/**
 * Issues order ids on one worker lease. Create with {@link openIdGenerator};
 * one per process is enough (128 000 ids/s). `close()` gives the lease back.
 */
export class IdGenerator {
  /** The leased worker number, 0..255. */
  readonly worker: number
  private readonly store: LeaseStore
  private readonly token: string
  private readonly clock: Clock
  private readonly ttlMs: number
  private readonly fenceMarginMs: number
  private readonly logger: Logger
  private readonly tl: IdTimeline
  private fenceAtMono: number
  private readonly holdUntilMono: number
  private readonly maxLeadMs: number
  private state: 'active' | 'lost' | 'closed' = 'active'
  private renewing: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private closing: Promise<void> | undefined
  private lastRenewError: string | undefined
  private lastRenewStartMono = -Infinity

  /** @internal use {@link openIdGenerator} */
  constructor(grant: LeaseGrant, o: Resolved) {
    this.worker = grant.worker
    this.token = grant.token
    this.store = o.store
    this.clock = o.clock
    this.ttlMs = o.ttlMs
    this.fenceMarginMs = o.fenceMarginMs
    this.logger = o.logger ?? silentLogger
    // The first id lands strictly after the previous holders' high-water.
    this.tl = new IdTimeline(grant.highWaterMs, grant.reservedUntilMs, o.maxLeadMs)
    this.fenceAtMono = o.monoBefore + this.ttlMs - this.fenceMarginMs
    this.maxLeadMs = o.maxLeadMs
    this.holdUntilMono = grant.highWaterUncertain ? o.monoAfter + o.ttlMs + o.maxLeadMs : -Infinity
  }

  /**
   * A new order id (decimal string) whose shard field is `shardOfKey(userId)`.
   * Never blocks: when it cannot issue now it throws.
   * @throws ShardkitError `ID_INVALID` for a bad user id; `ID_CLOCK_BEHIND`
   *   (retryable) when the time field would run more than `maxLeadMs` ahead of
   *   the wall clock or past the lease reservation; `ID_LEASE_LOST` when the
   *   lease could not be renewed in time (retryable) or was taken (not);
   *   `ID_TIME_EXHAUSTED` after 2094-09-07T15:47:35.551Z; `CLOSED`
   * @example gen.nextId('12345') // '3049582305034240105'-like; shardOfId(it) === 105
   */
  nextId(userId: number | bigint | string): string {
    const shard = shardOfKey(userId, 'userId')
    this.step()
    return encodeIdUnchecked(this.tl.lastMs - ID_EPOCH_MS, this.worker, this.tl.seq, shard)
  }

  /**
   * Like {@link nextId}, but returns `undefined` instead of throwing when the
   * refusal is retryable (ahead of the clock, renewing): for loops that ask
   * for more than 128 ids/ms, where building an error per refusal would cost
   * more than the id.
   * @throws as {@link nextId} for what retrying cannot fix
   */
  tryNextId(userId: number | bigint | string): string | undefined {
    const shard = shardOfKey(userId, 'userId')
    const why = this.tryStep()
    if (why === Step.OK) return encodeIdUnchecked(this.tl.lastMs - ID_EPOCH_MS, this.worker, this.tl.seq, shard)
    if (why === Step.BEHIND) return undefined
    const err = this.refusal(why)
    if (err.retryable) return undefined
    throw err
  }

  /**
   * `count` ids for one user, in increasing order. All or nothing: on an error
   * the ids made so far are dropped (unused ids are harmless gaps).
   * @throws as {@link nextId}; `USAGE` for a bad count
   */
  nextIds(userId: number | bigint | string, count: number): string[] {
    intIn('count', count, 1, 10_000_000)
    const shard = shardOfKey(userId, 'userId')
    const out = new Array<string>(count)
    for (let i = 0; i < count; i++) {
      this.step()
      out[i] = encodeIdUnchecked(this.tl.lastMs - ID_EPOCH_MS, this.worker, this.tl.seq, shard)
    }
    return out
  }

  /**
   * Like {@link nextIds}, but waits (on timers, never spinning) while the
   * generator is ahead of the clock or renewing, yielding to the event loop
   * every 1 000 ids. Gives up with the last error after `maxStallMs` (default
   * 5 000) of real time without progress.
   */
  async nextIdsAsync(userId: number | bigint | string, count: number, opts: { signal?: AbortSignal; maxStallMs?: number } = {}): Promise<string[]> {
    intIn('count', count, 1, 10_000_000)
    const shard = shardOfKey(userId, 'userId')
    const maxStallMs = opts.maxStallMs ?? 5_000
    const out: string[] = []
    let progressAt = performance.now()
    while (out.length < count) {
      if (opts.signal?.aborted) throw new ShardkitError('ABORTED', 'id generation was aborted', {}, { cause: opts.signal.reason })
      const before = out.length
      const stop = Math.min(count, before + 1_000)
      let why: number = Step.OK
      while (out.length < stop && (why = this.tryStep()) === Step.OK) {
        out.push(encodeIdUnchecked(this.tl.lastMs - ID_EPOCH_MS, this.worker, this.tl.seq, shard))
      }
      if (out.length > before) progressAt = performance.now()
      if (why === Step.OK) {
        await new Promise<void>((r) => setImmediate(r))
        continue
      }
      const err = this.refusal(why)
      if (!err.retryable || performance.now() - progressAt > maxStallMs) throw err
      await sleep(1)
    }
    return out
  }

  /**
   * Resolves once the generator may issue: at once, or when the wait-out of
   * an uncertain high-water (see `status().holdMs`) is over. Waits on timers;
   * renewals go on meanwhile (with `autoRenew`).
   * @throws ShardkitError `ABORTED` on the signal; `CLOSED` / `ID_LEASE_LOST` when the generator stopped meanwhile
   */
  async ready(opts: { signal?: AbortSignal } = {}): Promise<void> {
    for (;;) {
      if (opts.signal?.aborted) throw new ShardkitError('ABORTED', 'waiting for the id generator was aborted', {}, { cause: opts.signal.reason })
      if (this.state !== 'active') throw this.inactive()
      const ms = this.holdUntilMono - this.clock.monoMs()
      if (ms <= 0) return
      await sleep(Math.min(Math.ceil(ms), 250), undefined, { signal: opts.signal }).catch(() => undefined)
    }
  }

  /** The lease's current state and the timeline's position. */
  status(): IdGeneratorStatus {
    return {
      worker: this.worker,
      state: this.state,
      issued: this.tl.issued,
      highWaterMs: this.tl.lastMs,
      reservedUntilMs: this.tl.ceilingMs,
      leadMs: Math.max(0, this.tl.lastMs - this.clock.wallMs()),
      holdMs: Math.max(0, Math.ceil(this.holdUntilMono - this.clock.monoMs())),
    }
  }

  /** Moves the timeline one id forward and returns `Step.OK`, or returns why it cannot (nothing moves). */
  private tryStep(): number {
    if (this.state !== 'active') return INACTIVE
    const mono = this.clock.monoMs()
    if (mono >= this.fenceAtMono) return FENCED
    if (mono < this.holdUntilMono) return HELD
    return this.tl.tryStep(this.clock.wallMs())
  }

  private step(): void {
    const why = this.tryStep()
    if (why !== Step.OK) throw this.refusal(why)
  }

  private refusal(why: number): ShardkitError {
    if (why === INACTIVE) return this.inactive()
    if (why === FENCED) return this.fenced()
    if (why === HELD) return this.held()
    if (why === Step.PAST_RESERVATION) this.renewSoon()
    return this.tl.refusal(why as (typeof Step)[keyof typeof Step], this.worker)
  }

  private inactive(): ShardkitError {
    if (this.state === 'closed') return new ShardkitError('CLOSED', `the id generator for worker ${this.worker} was closed; open a new one with openIdGenerator()`, { worker: this.worker })
    return new ShardkitError('ID_LEASE_LOST', `worker ${this.worker}'s lease was taken by another generator after it expired (renewals failed for too long); open a new generator`, { worker: this.worker })
  }

  private held(): ShardkitError {
    const ms = Math.max(1, Math.ceil(this.holdUntilMono - this.clock.monoMs()))
    return new ShardkitError(
      'ID_CLOCK_BEHIND',
      `worker ${this.worker}'s high-water had no record in the Redis mirror when this generator took the lease (Redis lost its data, or first use), so the lease row alone cannot prove where its previous holder stopped; issuing starts in ${ms} ms, one lease TTL (${this.ttlMs} ms) plus maxLeadMs (${this.maxLeadMs} ms) after the lease was taken: retry then`,
      { worker: this.worker, holdMs: ms },
      { retryable: true },
    )
  }

  private fenced(): ShardkitError {
    this.renewSoon()
    return new ShardkitError(
      'ID_LEASE_LOST',
      `worker ${this.worker}'s lease has not been renewed for ${this.ttlMs - this.fenceMarginMs} ms or more (TTL ${this.ttlMs} ms), so issuing stopped before the lease can expire; check the control database${this.lastRenewError ? ` (last renewal error: ${this.lastRenewError})` : ''} and retry`,
      { worker: this.worker, leaseTtlMs: this.ttlMs },
      { retryable: true },
    )
  }

  /** @internal starts the renewal timer (every TTL/3; sooner after a failure). */
  startRenewing(): void {
    const schedule = (ms: number): void => {
      if (this.state !== 'active') return
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.renew().then(
          () => schedule(Math.floor(this.ttlMs / 3)),
          () => schedule(Math.max(50, Math.floor(this.ttlMs / 12))),
        )
      }, ms)
      // A generator alone must not keep a process alive; the embedding service decides that.
      this.timer.unref()
    }
    schedule(Math.floor(this.ttlMs / 3))
  }

  /** A renewal out of turn (fenced, or the clock passed the reservation), at most one per 100 ms. */
  private renewSoon(): void {
    if (this.renewing || this.clock.monoMs() - this.lastRenewStartMono < 100) return
    this.renew().catch(() => undefined)
  }

  /**
   * Renews the lease now: extends it by the TTL (database time) and raises the
   * reservation to the wall clock plus the TTL. Runs on a timer by default.
   * @throws ShardkitError `ID_LEASE_LOST` when another holder took the worker; the store's error when it did not answer
   */
  renew(): Promise<void> {
    if (this.state !== 'active') return Promise.reject(this.inactive())
    this.renewing ??= (async () => {
      // Start on a later tick, so that `finally` below always runs after this assignment.
      await null
      const monoBefore = this.clock.monoMs()
      this.lastRenewStartMono = monoBefore
      const reserve = Math.max(this.clock.wallMs(), this.tl.lastMs) + this.ttlMs
      try {
        await this.store.renew(this.worker, this.token, this.ttlMs, reserve)
        this.lastRenewError = undefined
        this.fenceAtMono = Math.max(this.fenceAtMono, monoBefore + this.ttlMs - this.fenceMarginMs)
        this.tl.ceilingMs = Math.max(this.tl.ceilingMs, reserve)
      } catch (err) {
        if (isShardkitError(err, 'ID_LEASE_LOST')) {
          if (this.state === 'active') this.state = 'lost'
          this.logger.error({ worker: this.worker }, 'id generator lease lost: another generator holds the worker')
        } else {
          this.lastRenewError = isShardkitError(err) ? err.code : ((err as { code?: string }).code ?? 'error')
          this.logger.warn({ worker: this.worker, code: this.lastRenewError }, 'id generator lease renewal failed; will retry')
        }
        throw err
      } finally {
        this.renewing = undefined
      }
    })()
    return this.renewing
  }

  /**
   * The high-water to record on release. Normally the last id time issued.
   * While an uncertain start is still being waited out, the previous holder
   * may still issue up to where the wait ends (by this machine's clock): the
   * next holder must start after that, not after the row's untrusted value.
   */
  private releaseHighWater(): number {
    const held = this.holdUntilMono - this.clock.monoMs()
    return held > 0 ? Math.max(this.tl.lastMs, this.clock.wallMs() + Math.ceil(held)) : this.tl.lastMs
  }

  /**
   * Stops issuing and gives the lease back, recording the last id time issued
   * as the high-water the next holder starts after. Idempotent; never throws
   * (if the store does not answer, the lease simply expires).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const wasActive = this.state === 'active'
      this.state = 'closed'
      if (this.timer) clearTimeout(this.timer)
      await this.renewing?.catch(() => undefined)
      if (!wasActive) return
      try {
        await this.store.release(this.worker, this.token, this.releaseHighWater())
      } catch (err) {
        this.logger.warn({ worker: this.worker, code: (err as { code?: string }).code }, 'id generator could not release its lease; it will expire')
      }
    })()
    return this.closing
  }
}
