/**
 * The outbox relay: for every primary database, reads `shardkit_outbox` in id
 * order, publishes each event to the topic exchange with publisher confirms
 * and `mandatory`, and marks rows published only after the confirm. Delivery
 * is at least once: a relay stopped between publish and mark sends those
 * events again; nothing is skipped.
 *
 * - One active relay per outbox (relay-lease.ts); standbys poll for the lease.
 * - Per order, an event is published only after the previous event of the
 *   same order was confirmed (relay-publish.ts); a retry never overtakes.
 * - Targets: with `services`, each event goes to the queue of its partition
 *   of every service (`<service>.order-events.<NN>`), one publish per queue
 *   through the default exchange, so the broker answers for each queue alone;
 *   without, to the topic exchange (one publish; the broker's bindings fan out).
 * - Back-pressure: a target that refuses an event (a nack: the queue is at its
 *   `x-max-length` with reject-publish; or returned: unbound / no such queue)
 *   gets it later from the retry table (outbox-retry.ts); the outbox row is
 *   handed off (marked) so the outbox head moves on and no other partition or
 *   service waits. Retries go to the refusing target alone, in order per order,
 *   with backoff per target up to `maxBackoffMs`. Through the exchange (no
 *   `services`) a nack cannot say which queue refused, so its retry reaches the
 *   queues that took it too (duplicates their dedupe drops): give `services`.
 * - A timeout or a broker that is down: the row stays unpublished, backoff up
 *   to `maxBackoffMs`, retry; never dropped.
 * - Across a write flip the barrier in outbox-store.ts holds the new
 *   primary's events until the old primary's are published or handed off;
 *   an order's events held on the old side hold its new events for that target.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Connection } from 'rabbitmq-client'
import { ShardkitError } from '../errors.js'
import { silentLogger, type Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { phase } from '../runtime/phase-hooks.js'
import { primaryDatabases, type PrimaryDatabase } from '../dualwrite/placement.js'
import { createConfirmingPublisher, openEventConnection, type ConfirmingPublisher } from './amqp.js'
import { prunePublished, readPending, type OutboxRow } from './outbox-store.js'
import { Counterparts } from './relay-counterparts.js'
import { codeOf, publishBatch, publishHeld } from './relay-publish.js'
import { countAttempt, handOff, heldKeys, heldTargets, readHeld, releaseHeld } from './outbox-retry.js'
import { conventionalQueues } from './status.js'
import { partitionOfUser } from './message.js'
import { acquireRelayLease, leaseRemainingMs, releaseRelayLease, renewRelayLease, type RelayLease } from './relay-lease.js'
import { sleep } from '../runtime/sleep.js'

export interface OutboxRelayOptions {
  readonly runtime: Runtime
  /** A connection the caller owns; else the relay opens one from `config.events.url` and closes it. */
  readonly connection?: Connection
  /** Default `config.events.exchange`. */
  readonly exchange?: string
  /** Rows per read (default 500, 1-10000). */
  readonly batchSize?: number
  /** Wait between reads of a drained outbox (default 50 ms). */
  readonly idleMs?: number
  /** Lease time to live (default 10000 ms); renewed every third of it. */
  readonly leaseTtlMs?: number
  /** Backoff cap after failures (default 5000 ms). */
  readonly maxBackoffMs?: number
  /** A publish not confirmed in this time counts as failed (default 15000 ms). */
  readonly confirmTimeoutMs?: number
  /** Published rows older than this are deleted (default `config.events.retentionMs`). */
  readonly retentionMs?: number
  /** How often the holder prunes (default 60000 ms). */
  readonly pruneEveryMs?: number
  /** Only these outboxes (primary names); default all primary databases. */
  readonly outboxes?: readonly string[]
  /**
   * The consuming services: each event goes to `<service>.order-events.<NN>` of
   * each, per queue, and a full queue holds back only its own events. Default
   * none: publish to the exchange (a nack's retry then reaches every bound queue).
   */
  readonly services?: readonly string[]
  /** The lease holder name (default host-pid-random). */
  readonly holder?: string
  readonly logger?: Logger
}

/** Per-outbox counters (since start). */
export interface OutboxRelayStats {
  readonly outbox: string
  holding: boolean
  token: number | null
  published: number
  /** Publishes the broker returned (no queue bound); retried later, never marked. */
  unroutable: number
  /** Nacks, timeouts and broken connections. */
  failed: number
  /** Nacks alone (a target queue at its cap). */
  nacked: number
  /** Events owed to a target that refused them, as last counted (retry table of this outbox). */
  owed: number
  /** Held events a target confirmed later. */
  retried: number
  lastError: string | null
  /** Set while the barrier holds this outbox's rows back. */
  waitingOn: { outbox: string; stageVersion: number } | null
  /** Outboxes of the other side that did not answer: their orders' events wait (retried with backoff), the rest go on. */
  skipping: string[]
  lastPublishAt: number | null
}

/** One pass of `drain()` over one outbox. */
export interface DrainResult {
  readonly outbox: string
  /** False when another relay holds the lease. */
  readonly held: boolean
  readonly published: number
  readonly unroutable: number
  readonly failed: number
  /** Events still owed to a target that refused them (the retry table), after the drain. */
  readonly owed: number
  /** Held events delivered during the drain. */
  readonly retried: number
  /** Published rows pruned (older than the retention). */
  readonly pruned: number
  /** Rows left unpublished or held (failures, a full queue, barrier, or another holder). */
  readonly blocked: boolean
}

type Pass = { published: number; unroutable: number; failed: number; left: number; read: number; waiting: boolean; lost: boolean }
type Retry = { delivered: number; held: number; lost: boolean }

/**
 * The relay. `start()` runs a loop per outbox until `stop()`; `drain()`
 * publishes what is there now and returns (the CLI's `--once`).
 * @example
 * const relay = new OutboxRelay({ runtime: rt, logger })
 * relay.start()
 * // ...
 * await relay.stop()
 */
export class OutboxRelay {
  private readonly rt: Runtime
  private readonly conn: Connection
  private readonly ownsConnection: boolean
  private readonly pub: ConfirmingPublisher
  private readonly all: PrimaryDatabase[]
  private readonly mine: PrimaryDatabase[]
  private readonly o: Required<Omit<OutboxRelayOptions, 'runtime' | 'connection' | 'outboxes' | 'logger' | 'services'>>
  private readonly services: readonly string[]
  /** Per outbox and target: when the next retry may go (ms) and the current backoff. */
  private readonly retryAt = new Map<string, { at: number; backoff: number }>()
  private readonly logger: Logger
  private readonly leases = new Map<string, RelayLease>()
  private readonly counterparts: Counterparts
  private readonly counters = new Map<string, OutboxRelayStats>()
  private readonly abort = new AbortController()
  private loops: Promise<void>[] = []
  private closed = false

  constructor(opts: OutboxRelayOptions) {
    const num = (name: string, v: number | undefined, def: number, min: number, max: number): number => {
      const x = v ?? def
      if (!Number.isInteger(x) || x < min || x > max) throw new ShardkitError('USAGE', `${name} must be a whole number from ${min} to ${max} (got ${String(x)})`, { argument: name })
      return x
    }
    this.rt = opts.runtime
    const cfg = this.rt.config.events
    this.o = {
      exchange: opts.exchange ?? cfg.exchange,
      batchSize: num('batchSize', opts.batchSize, 500, 1, 10_000),
      idleMs: num('idleMs', opts.idleMs, 50, 1, 60_000),
      leaseTtlMs: num('leaseTtlMs', opts.leaseTtlMs, 10_000, 300, 600_000),
      maxBackoffMs: num('maxBackoffMs', opts.maxBackoffMs, 5_000, 10, 600_000),
      confirmTimeoutMs: num('confirmTimeoutMs', opts.confirmTimeoutMs, 15_000, 100, 600_000),
      retentionMs: num('retentionMs', opts.retentionMs, cfg.retentionMs, 0, 365 * 86_400_000),
      pruneEveryMs: num('pruneEveryMs', opts.pruneEveryMs, 60_000, 10, 86_400_000),
      holder: opts.holder ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    }
    this.logger = opts.logger ?? silentLogger
    this.services = [...new Set(opts.services ?? [])]
    for (const svc of this.services) {
      if (!/^[A-Za-z0-9_.-]{1,200}$/.test(svc)) throw new ShardkitError('USAGE', `services: ${JSON.stringify(svc)} is not a service name (1-200 letters, digits, _ . -); queues are <service>.order-events.<NN>`, { argument: 'services' })
    }
    this.all = primaryDatabases(this.rt.config)
    const wanted = opts.outboxes
    this.mine = wanted ? this.all.filter((p) => wanted.includes(p.name)) : this.all
    if (wanted && this.mine.length !== wanted.length) {
      const unknown = wanted.filter((w) => !this.all.some((p) => p.name === w))
      throw new ShardkitError('USAGE', `unknown outbox ${unknown.join(', ')}; use primary names as \`shardctl events status\` lists them`, { argument: 'outboxes' })
    }
    this.ownsConnection = opts.connection === undefined
    this.conn = opts.connection ?? openEventConnection(cfg.url, { name: `shardkit-relay ${this.o.holder}`, onError: (err) => this.logger.warn({ code: codeOf(err) }, 'events relay: broker connection error; reconnecting') })
    this.pub = createConfirmingPublisher(this.conn, this.o.exchange)
    this.counterparts = new Counterparts(this.rt, this.all, { maxBackoffMs: this.o.maxBackoffMs, probeTimeoutMs: Math.min(2_000, Math.floor(this.o.leaseTtlMs / 4)), logger: this.logger })
    for (const p of this.mine) {
      this.counters.set(p.name, { outbox: p.name, holding: false, token: null, published: 0, unroutable: 0, failed: 0, nacked: 0, owed: 0, retried: 0, lastError: null, waitingOn: null, skipping: [], lastPublishAt: null })
    }
  }

  /** The lease holder name of this relay. */
  get holder(): string {
    return this.o.holder
  }

  /** Counters per outbox (copies). */
  stats(): OutboxRelayStats[] {
    return [...this.counters.values()].map((s) => ({ ...s }))
  }

  /** Runs one loop per outbox in the background until `stop()`. */
  start(): void {
    if (this.closed) throw new ShardkitError('CLOSED', 'the relay was stopped; create a new OutboxRelay')
    if (this.loops.length > 0) return
    this.loops = this.mine.map((p) => this.loop(p))
  }

  /**
   * Publishes every outbox until it is empty or stuck (failures, barrier,
   * another holder), then gives the leases back. For `--once` and tests.
   */
  async drain(opts: { maxPasses?: number } = {}): Promise<DrainResult[]> {
    const out: DrainResult[] = []
    for (const p of this.mine) {
      const lease = await acquireRelayLease(this.rt, p, this.o.holder, this.o.leaseTtlMs)
      if (!lease) {
        out.push({ outbox: p.name, held: false, published: 0, unroutable: 0, failed: 0, blocked: true, owed: 0, retried: 0, pruned: 0 })
        continue
      }
      this.setLease(p, lease)
      let published = 0, unroutable = 0, failed = 0, blocked = false, retried = 0, held = 0, pruned = 0
      try {
        let renewedAt = Date.now()
        for (let i = 0; i < (opts.maxPasses ?? 1_000_000); i++) {
          if (Date.now() - renewedAt > this.o.leaseTtlMs / 3) {
            if (!(await renewRelayLease(this.rt, lease, this.o.leaseTtlMs))) { blocked = true; break }
            renewedAt = Date.now()
          }
          const q = await this.retry(p, lease, true)
          retried += q.delivered
          held = q.held
          if (q.lost) { blocked = true; break }
          const r = await this.pass(p, lease)
          published += r.published; unroutable += r.unroutable; failed += r.failed
          if (r.lost || r.left > 0) { blocked = true; break }
          // Barrier or an unreachable counterpart: go on while other rows still move.
          if (r.waiting) { blocked = true; if (r.published === 0) break }
          if (r.read === 0 && q.delivered === 0) break
        }
        if (!blocked) held = (await heldTargets(this.rt, p)).reduce((n, t) => n + t.count, 0)
        this.counters.get(p.name)!.owed = held
        if (held > 0) blocked = true
        // --once runs prune too: a cron-style relay keeps the outbox bounded.
        pruned = await prunePublished(this.rt, p, this.o.retentionMs)
      } finally {
        await releaseRelayLease(this.rt, lease)
        this.setLease(p, undefined)
      }
      out.push({ outbox: p.name, held: true, published, unroutable, failed, blocked, owed: held, retried, pruned })
    }
    return out
  }

  /** Stops the loops (after the batch in hand), gives the leases back, closes what it opened. Idempotent. */
  async stop(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.abort.abort()
    await Promise.allSettled(this.loops)
    await Promise.all([...this.leases.values()].map((l) => releaseRelayLease(this.rt, l)))
    this.leases.clear()
    await this.pub.close().catch(() => undefined)
    if (this.ownsConnection) await this.conn.close().catch(() => undefined)
  }

  private setLease(p: PrimaryDatabase, lease: RelayLease | undefined): void {
    const s = this.counters.get(p.name)!
    if (lease) this.leases.set(p.name, lease)
    else this.leases.delete(p.name)
    s.holding = lease !== undefined
    s.token = lease?.token ?? null
  }

  private async loop(p: PrimaryDatabase): Promise<void> {
    const signal = this.abort.signal
    let backoff = 0
    let renewedAt = 0
    let prunedAt = 0
    while (!signal.aborted) {
      try {
        let lease = this.leases.get(p.name)
        if (!lease) {
          lease = await acquireRelayLease(this.rt, p, this.o.holder, this.o.leaseTtlMs)
          if (!lease) {
            await sleep(Math.max(50, Math.floor(this.o.leaseTtlMs / 4)), signal)
            continue
          }
          this.setLease(p, lease)
          renewedAt = Date.now()
          this.logger.info({ outbox: p.name, token: lease.token }, 'events relay: lease acquired')
        } else if (Date.now() - renewedAt > this.o.leaseTtlMs / 3) {
          if (!(await renewRelayLease(this.rt, lease, this.o.leaseTtlMs))) {
            this.logger.warn({ outbox: p.name, token: lease.token }, 'events relay: lease lost; standing by')
            this.setLease(p, undefined)
            continue
          }
          renewedAt = Date.now()
        }
        if (Date.now() - prunedAt > this.o.pruneEveryMs) {
          prunedAt = Date.now()
          const n = await prunePublished(this.rt, p, this.o.retentionMs)
          if (n > 0) this.logger.debug({ outbox: p.name, pruned: n }, 'events relay: pruned published rows')
        }
        // Never publish on a lease that may have expired while we were busy.
        if (Date.now() - renewedAt > (this.o.leaseTtlMs * 2) / 3) continue
        const q = await this.retry(p, lease, false)
        const r = q.lost ? undefined : await this.pass(p, lease)
        if (!r || r.lost) {
          this.logger.warn({ outbox: p.name, token: lease.token }, 'events relay: a newer relay holds this outbox; standing by')
          this.setLease(p, undefined)
          continue
        }
        if (r.left > 0) {
          backoff = Math.min(this.o.maxBackoffMs, backoff === 0 ? 100 : backoff * 2)
          const s = this.counters.get(p.name)!
          this.logger.warn({ outbox: p.name, failed: r.failed, left: r.left, code: s.lastError, backoffMs: backoff }, 'events relay: publishes not confirmed; left unpublished, retrying')
          await sleep(backoff, signal)
        } else {
          backoff = 0
          if ((r.read === 0 && q.delivered === 0) || r.waiting) await sleep(this.o.idleMs, signal)
        }
      } catch (err) {
        const s = this.counters.get(p.name)!
        s.lastError = codeOf(err)
        this.logger.warn({ outbox: p.name, code: s.lastError }, 'events relay: pass failed; retrying')
        backoff = Math.min(this.o.maxBackoffMs, backoff === 0 ? 100 : backoff * 2)
        await sleep(backoff, signal)
      }
    }
  }

  /** The targets of a row: its partition's queue of each service, or '' (the exchange). */
  private targetsOf = (row: OutboxRow): readonly string[] => {
    if (this.services.length === 0) return ['']
    const part = partitionOfUser(row.event.userId)
    return this.services.map((svc) => conventionalQueues(svc)[part]!)
  }

  /**
   * Retries the held events of every target that is due (all of them when
   * `now`), in outbox id order; a target that refuses again backs off.
   */
  private async retry(p: PrimaryDatabase, lease: RelayLease, now: boolean): Promise<Retry> {
    const s = this.counters.get(p.name)!
    const targets = await heldTargets(this.rt, p)
    let held = targets.reduce((n, t) => n + t.count, 0)
    s.owed = held
    let delivered = 0
    for (const t of targets) {
      const key = `${p.name}\n${t.target}`
      const due = this.retryAt.get(key)
      if (!now && due && Date.now() < due.at) continue
      const rows = await readHeld(this.rt, p, t.target, this.o.batchSize)
      if (rows.length === 0) continue
      // Across a flip: the other side's earlier holds of the order for this target go first;
      // an unreachable counterpart blocks its orders' rows.
      const sc = await this.counterparts.screen(p, rows, { barrier: false })
      const ready = new Set(sc.ready)
      const blocked = (row: OutboxRow) => !ready.has(row) || sc.theirHold(row, t.target)
      const deadline = await this.publishDeadline(p, lease)
      if (deadline === undefined) return { delivered, held, lost: true }
      const out = await publishHeld(this.pub, rows, t.target, { confirmTimeoutMs: this.o.confirmTimeoutMs, blocked, deadline })
      if (out.delivered.length > 0) {
        const n = await releaseHeld(this.rt, p, lease.token, t.target, out.delivered)
        if (n === undefined) return { delivered, held, lost: true }
        delivered += n
        held -= n
        s.retried += n
        s.lastPublishAt = Date.now()
      }
      if (out.refusedId !== null) {
        const backoff = Math.min(this.o.maxBackoffMs, due ? due.backoff * 2 : 100)
        this.retryAt.set(key, { at: Date.now() + backoff, backoff })
        s.lastError = out.lastError
        await countAttempt(this.rt, p, t.target, out.refusedId)
      } else this.retryAt.delete(key)
    }
    s.owed = held
    return { delivered, held, lost: false }
  }

  /**
   * Right before a publish batch: the lease's remaining time in database time,
   * as an epoch-ms deadline less a tenth of the TTL; undefined when the lease is
   * no longer ours (a newer relay took over while this one was paused), so a
   * paused relay does not publish its stale batch. What remains: a pause between
   * this check and a send (or bytes in flight) can still put a publish on the
   * wire late, bounded by the deadline; consumers' dedupe drops those.
   */
  private async publishDeadline(p: PrimaryDatabase, lease: RelayLease): Promise<number | undefined> {
    await phase('events.before-publish', { outbox: p.name, holder: this.o.holder })
    const t0 = Date.now()
    const ms = await leaseRemainingMs(this.rt, lease)
    if (ms === undefined) return undefined
    return t0 + ms - Math.floor(this.o.leaseTtlMs / 10)
  }

  /** One batch: read, barrier and holds of the counterparts, publish (chained per order) to each target, hand off the settled rows (mark, and hold the refused). */
  private async pass(p: PrimaryDatabase, lease: RelayLease): Promise<Pass> {
    const s = this.counters.get(p.name)!
    const all = await readPending(this.rt, p, this.o.batchSize, this.counterparts.skippedShards(p))
    const res: Pass = { published: 0, unroutable: 0, failed: 0, left: 0, read: all.length, waiting: false, lost: false }
    if (all.length === 0) return res
    const sc = await this.counterparts.screen(p, all, { barrier: true })
    if (sc.waitingOn && s.waitingOn === null) this.logger.info({ outbox: p.name, waitingOn: sc.waitingOn }, 'events relay: holding events back until the old primary\'s outbox is published (write flip barrier)')
    s.waitingOn = sc.waitingOn ? { ...sc.waitingOn } : null
    s.skipping = sc.down.length > 0 || this.counterparts.skipped().length > 0 ? [...new Set([...sc.down, ...this.counterparts.skipped()])] : []
    const rows = sc.ready
    if (sc.left > 0) res.waiting = true
    if (rows.length === 0) return res
    const own = await heldKeys(this.rt, p, [...new Set(rows.map((r) => r.event.orderId))])
    const heldBefore = (row: OutboxRow, target: string) => own.has(`${row.event.orderId}\n${target}`) || sc.theirHold(row, target)
    const deadline = await this.publishDeadline(p, lease)
    if (deadline === undefined) {
      res.lost = true
      return res
    }
    const out = await publishBatch(this.pub, rows, { confirmTimeoutMs: this.o.confirmTimeoutMs, targetsOf: this.targetsOf, heldBefore, deadline })
    res.unroutable = out.unroutable
    res.failed = out.failed + out.nacked
    res.left = out.left
    s.unroutable += out.unroutable
    s.failed += out.failed + out.nacked
    s.nacked += out.nacked
    if (out.lastError) s.lastError = out.lastError
    const ok = out.handedOff
    await phase('events.published-before-mark', { outbox: p.name, holder: this.o.holder, count: ok.length })
    if (ok.length > 0) {
      const marked = await handOff(this.rt, p, lease.token, out.held, ok)
      if (marked === undefined) {
        res.lost = true
        return res
      }
      s.owed += out.held.length
      res.published = marked
      s.published += marked
      if (marked > 0) s.lastPublishAt = Date.now()
    }
    return res
  }
}
