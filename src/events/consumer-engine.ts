/**
 * The message loop behind `createOrderEventConsumer` (consumer.ts, which
 * documents the delivery rules): per delivery, decode, take the order's lock,
 * ask Redis (and the durable store when Redis knows nothing of the order),
 * then skip, report as unvouched, wait for a missing version, or call
 * `handle` (retried in place while it throws) and record it (durable store
 * first, then Redis) before the ack. Every Redis answer carries the queue's
 * epoch marker: a new epoch means Redis lost its data (dedupe.ts).
 */
import { setMaxListeners } from 'node:events'
import { ConsumerStatus, type AsyncMessage, type Connection, type Consumer } from 'rabbitmq-client'
import { ShardkitError } from '../errors.js'
import type { Logger } from '../runtime/logger.js'
import type { ConsumerCounters, OrderEventConsumer, OrderEventHandler, UnvouchedEvent, UnvouchedPolicy } from './consumer.js'
import type { ConsumerStateStore } from './consumer-state.js'
import { EpochTracker, type EpochMarker, type EventDedupe } from './dedupe.js'
import { decodeEvent, type OrderEvent } from './message.js'
import { classifyEvent, KeyedLock, KeyedSignal, unvouchedAfterLoss, type OrderMemory, type VersionGap } from './ordering.js'
import { sleep } from '../runtime/sleep.js'

function bodyOf(msg: AsyncMessage): Buffer | string {
  const b: unknown = msg.body
  if (Buffer.isBuffer(b) || typeof b === 'string') return b
  return JSON.stringify(b) // the client parsed an application/json body already
}

/** Validated settings from consumer.ts. */
export interface EngineSettings {
  readonly queue: string
  readonly prefetch: number
  readonly gapWaitMs: number
  readonly retryInitial: number
  readonly retryMax: number
  /** Optional durable memory (consumer-state.ts). */
  readonly durable: ConsumerStateStore | undefined
  readonly unvouchedPolicy: UnvouchedPolicy
  readonly onUnvouched: ((u: UnvouchedEvent) => void | Promise<void>) | undefined
  readonly clockSkewMs: number
  /** How many unvouched events `unvouched` keeps (the newest). */
  readonly unvouchedKeep: number
  readonly consumerProps: Parameters<Connection['createConsumer']>[0]
}

/** One queue's consumer; created and started by `createOrderEventConsumer`. */
export class EventConsumer implements OrderEventConsumer {
  readonly queue: string
  private readonly totals: Required<ConsumerCounters> = { handled: 0, duplicates: 0, stale: 0, gaps: 0, waited: 0, failures: 0, malformed: 0, unvouched: 0, redisLosses: 0, restored: 0 }
  private readonly unvouchedList: UnvouchedEvent[] = []
  private epoch: EpochTracker | undefined
  private readonly locks = new KeyedLock()
  private readonly wakeups = new KeyedSignal()
  private readonly stop = new AbortController()
  private sub: Consumer | undefined
  private closing: Promise<void> | undefined
  private channelGeneration = 0

  constructor(
    private readonly conn: Connection,
    private readonly closeOwned: () => Promise<unknown>,
    private readonly dedupe: EventDedupe,
    private readonly handle: OrderEventHandler,
    private readonly logger: Logger,
    private readonly s: EngineSettings,
  ) {
    this.queue = s.queue
    // Each delivery in flight (at most `prefetch`) may wait on the stop signal: not a leak.
    setMaxListeners(s.prefetch * 2 + 10, this.stop.signal)
  }

  get counters(): Readonly<ConsumerCounters> {
    return { ...this.totals }
  }

  get unvouched(): readonly UnvouchedEvent[] {
    return [...this.unvouchedList]
  }

  get redisLostAt(): string | undefined {
    const m = this.epoch?.current
    return m && m.lossAtMs > 0 ? new Date(m.lossAtMs).toISOString() : undefined
  }

  async start(timeoutMs: number): Promise<this> {
    // The marker first: a consumer that cannot reach Redis at start fails here, before taking messages.
    try {
      this.epoch = new EpochTracker(await this.dedupe.start())
    } catch (err) {
      await this.close()
      throw err
    }
    const sub = this.conn.createConsumer(this.s.consumerProps, (msg) => this.onMessage(msg))
    this.sub = sub
    sub.on('error', (err) => this.logger.warn({ err: (err as Error).message }, 'order event consumer error'))
    // A new channel means the old one's unacked deliveries went back to the queue: work on them is abandoned.
    sub.on('ready', () => this.channelGeneration++)
    const ready = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs)
      sub.once('ready', () => {
        clearTimeout(t)
        resolve(true)
      })
    })
    if (!ready) {
      await this.close()
      throw new ShardkitError('SHARD_FAILED', `consumer on queue ${this.queue} did not start within ${timeoutMs} ms; check that RabbitMQ answers at events.url`, { queue: this.queue }, { retryable: true })
    }
    return this
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort()
      await this.sub?.close().catch(() => undefined)
      await this.closeOwned()
    })()
    return this.closing
  }

  /** Retries `fn` with backoff until it resolves; undefined when the consumer stops first. */
  private async retrying<T>(fn: (attempt: number) => Promise<T>, what: string, live: () => boolean): Promise<{ value: T } | undefined> {
    let delay = this.s.retryInitial
    for (let attempt = 1; ; attempt++) {
      if (this.stop.signal.aborted || !live()) return undefined
      try {
        return { value: await fn(attempt) }
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, attempt }, `order event consumer: ${what} failed; retrying`)
        await sleep(delay, this.stop.signal)
        delay = Math.min(delay * 2, this.s.retryMax)
      }
    }
  }

  private async onMessage(msg: AsyncMessage): Promise<ConsumerStatus> {
    if (this.stop.signal.aborted) return ConsumerStatus.REQUEUE
    let event: OrderEvent
    try {
      event = decodeEvent(bodyOf(msg))
    } catch (err) {
      this.totals.malformed++
      this.logger.error({ err: (err as Error).message, routingKey: msg.routingKey }, 'order event consumer: dropping a message that is not an order event')
      return ConsumerStatus.DROP
    }
    const generation = this.channelGeneration
    const live = () => generation === this.channelGeneration
    const waitUntil = Date.now() + this.s.gapWaitMs
    for (let waited = false; ; ) {
      const release = await this.locks.acquire(event.orderId)
      try {
        // While `handle` keeps throwing, the order's lock stays held: its later versions queue behind it.
        for (let attempt = 1; ; attempt++) {
          if (this.stop.signal.aborted || !live()) return ConsumerStatus.REQUEUE
          const memory = await this.remember(event, live)
          if (!memory) return ConsumerStatus.REQUEUE
          if (this.s.durable === undefined && unvouchedAfterLoss(memory, Date.parse(event.occurredAt), this.epoch?.current.lossAtMs ?? 0, this.s.clockSkewMs)) {
            const status = await this.unvouchedOne(event, msg, attempt)
            if (status !== undefined) return status
            await sleep(Math.min(this.s.retryInitial * 2 ** (attempt - 1), this.s.retryMax), this.stop.signal)
            continue
          }
          const decision = classifyEvent(memory, event.version, Date.now() >= waitUntil)
          if (decision.action === 'duplicate') {
            this.totals.duplicates++
            return ConsumerStatus.ACK
          }
          if (decision.action === 'stale') {
            this.totals.stale++
            return ConsumerStatus.ACK
          }
          if (decision.action === 'wait') break
          const status = await this.handleOne(event, msg, decision.gap, attempt)
          if (status !== undefined) return status
          // Back off, then look at Redis again: a takeover may have handled it meanwhile.
          await sleep(Math.min(this.s.retryInitial * 2 ** (attempt - 1), this.s.retryMax), this.stop.signal)
        }
      } finally {
        release()
      }
      // A later version: wait (without the lock) for the missing one to be handled, or for the wait to end.
      if (!waited) {
        waited = true
        this.totals.waited++
      }
      const how = await this.wakeups.wait(event.orderId, waitUntil - Date.now(), this.stop.signal)
      if (how === 'aborted') return ConsumerStatus.REQUEUE
    }
  }

  /** Notes the marker a script returned: a new epoch means Redis lost the queue's memory (a late reply from before it does not). */
  private noteMarker(m: EpochMarker): void {
    if (this.epoch === undefined) {
      this.epoch = new EpochTracker(m)
      return
    }
    if (this.epoch.note(m) !== 'lost') return
    this.totals.redisLosses++
    this.logger.warn(
      { lostAt: new Date(m.lossAtMs).toISOString(), durable: this.s.durable !== undefined },
      this.s.durable ? 'order event consumer: Redis lost this queue\'s memory; restoring orders from the durable store as they come' : 'order event consumer: Redis lost this queue\'s memory; events of unknown orders that occurred before the loss are reported as unvouched',
    )
  }

  /** Redis's memory of the order, filled from the durable store when Redis knows nothing of it; undefined when the consumer stopped first. */
  private async remember(event: OrderEvent, live: () => boolean): Promise<OrderMemory | undefined> {
    const peeked = await this.retrying(() => this.dedupe.peek(event), 'Redis lookup', live)
    if (!peeked) return undefined
    this.noteMarker(peeked.value.marker)
    const { seen, lastVersion } = peeked.value
    const durable = this.s.durable
    if (durable === undefined || seen || lastVersion > 0) return { seen, lastVersion }
    const stored = await this.retrying(() => durable.lastVersion(this.queue, event.orderId), 'durable state lookup', live)
    if (!stored) return undefined
    if (stored.value === 0) return { seen, lastVersion }
    const restored = await this.retrying(() => this.dedupe.restore(event.orderId, stored.value), 'Redis restore', live)
    if (!restored) return undefined
    this.totals.restored++
    return { seen, lastVersion: stored.value }
  }

  /** Reports an event the consumer cannot vouch for, then skips it or hands it over marked, per policy; undefined when `handle` threw. */
  private async unvouchedOne(event: OrderEvent, msg: AsyncMessage, attempt: number): Promise<ConsumerStatus | undefined> {
    const lostAt = new Date(this.epoch!.current.lossAtMs).toISOString()
    const u: UnvouchedEvent = {
      orderId: event.orderId,
      version: event.version,
      eventId: event.eventId,
      queue: this.queue,
      reason: 'redis-data-lost',
      detail: `Redis lost this queue's memory (noticed ${lostAt}); the order has no memory since, and the event occurred ${event.occurredAt}, before the loss or within clockSkewMs (${this.s.clockSkewMs} ms) of it, so it may have been handled already`,
      lostAt,
      action: this.s.unvouchedPolicy,
    }
    if (this.s.unvouchedPolicy === 'handle') {
      try {
        await this.handle(event, { redelivered: msg.redelivered, routingKey: msg.routingKey, queue: this.queue, attempt, unvouched: u })
      } catch (err) {
        this.totals.failures++
        this.logger.warn({ err: (err as Error).message, orderId: event.orderId, version: event.version, attempt }, 'order event consumer: handle of an unvouched event failed; will retry')
        return undefined
      }
    }
    // The event id only, not the version: a later resend of an older event of this order must stay unvouched.
    const rec = await this.recordRetrying(event, true)
    if (rec === undefined) return ConsumerStatus.REQUEUE
    if (rec === 'recorded') {
      this.totals.unvouched++
      this.unvouchedList.push(u)
      if (this.unvouchedList.length > this.s.unvouchedKeep) this.unvouchedList.shift()
      this.logger.warn({ orderId: u.orderId, version: u.version, eventId: u.eventId, action: u.action }, 'order event consumer: unvouched event after a Redis loss')
      if (this.s.onUnvouched) {
        try {
          await this.s.onUnvouched(u)
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, 'order event consumer: onUnvouched threw; the event stays counted as unvouched')
        }
      }
    } else this.totals.duplicates++
    this.wakeups.notify(event.orderId)
    return ConsumerStatus.ACK
  }

  /** Records in Redis, retrying while Redis is down; undefined when the consumer is closed meanwhile. */
  private async recordRetrying(event: OrderEvent, seenOnly: boolean): Promise<Awaited<ReturnType<EventDedupe['record']>>['outcome'] | undefined> {
    for (let delay = this.s.retryInitial; ; delay = Math.min(delay * 2, this.s.retryMax)) {
      try {
        const r = await this.dedupe.record(event, seenOnly)
        this.noteMarker(r.marker)
        return r.outcome
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'order event consumer: Redis record failed; retrying')
        if (this.stop.signal.aborted) return undefined
        await sleep(delay, this.stop.signal)
      }
    }
  }

  /** Calls `handle` once and records it; undefined when `handle` threw (the caller retries). */
  private async handleOne(event: OrderEvent, msg: AsyncMessage, gap: VersionGap | undefined, attempt: number): Promise<ConsumerStatus | undefined> {
    try {
      await this.handle(event, { redelivered: msg.redelivered, routingKey: msg.routingKey, queue: this.queue, attempt, ...(gap ? { gap } : {}) })
    } catch (err) {
      this.totals.failures++
      this.logger.warn({ err: (err as Error).message, orderId: event.orderId, version: event.version, attempt }, 'order event consumer: handle failed; will retry')
      return undefined
    }
    // Record right away, before the ack: a crash before the record is the only way `handle` runs twice.
    // The durable store first, so it is never behind Redis. Down: keep trying; if the consumer is
    // closed meanwhile, give up and let the broker redeliver.
    const durable = this.s.durable
    if (durable !== undefined) {
      for (let delay = this.s.retryInitial; ; delay = Math.min(delay * 2, this.s.retryMax)) {
        try {
          await durable.record(this.queue, event.orderId, event.version)
          break
        } catch (err) {
          this.logger.warn({ err: (err as Error).message }, 'order event consumer: durable state write failed; retrying')
          if (this.stop.signal.aborted) return ConsumerStatus.REQUEUE
          await sleep(delay, this.stop.signal)
        }
      }
    }
    const outcome = await this.recordRetrying(event, false)
    if (outcome === undefined) return ConsumerStatus.REQUEUE
    if (outcome === 'recorded') {
      this.totals.handled++
      if (gap) this.totals.gaps++
    } else {
      // Another consumer recorded it while we handled it (a takeover after a lost connection).
      this.totals.duplicates++
      this.logger.warn({ orderId: event.orderId, version: event.version, outcome }, 'order event consumer: event was handled elsewhere at the same time')
    }
    this.wakeups.notify(event.orderId)
    return ConsumerStatus.ACK
  }
}
