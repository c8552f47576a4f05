/**
 * The message loop behind `createOrderEventConsumer` (consumer.ts, which
 * documents the delivery rules): per delivery, decode, take the order's lock,
 * ask Redis, then skip, wait for a missing version, or call `handle` (retried
 * in place while it throws) and record it before the ack.
 */
import { ConsumerStatus, type AsyncMessage, type Connection, type Consumer } from 'rabbitmq-client'
import { ShardkitError } from '../errors.js'
import type { Logger } from '../runtime/logger.js'
import type { ConsumerCounters, OrderEventConsumer, OrderEventHandler } from './consumer.js'
import type { EventDedupe } from './dedupe.js'
import { decodeEvent, type OrderEvent } from './message.js'
import { classifyEvent, KeyedLock, KeyedSignal, type VersionGap } from './ordering.js'
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
  readonly consumerProps: Parameters<Connection['createConsumer']>[0]
}

/** One queue's consumer; created and started by `createOrderEventConsumer`. */
export class EventConsumer implements OrderEventConsumer {
  readonly queue: string
  private readonly totals: ConsumerCounters = { handled: 0, duplicates: 0, stale: 0, gaps: 0, waited: 0, failures: 0, malformed: 0 }
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
  }

  get counters(): Readonly<ConsumerCounters> {
    return { ...this.totals }
  }

  async start(timeoutMs: number): Promise<this> {
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
          const memory = await this.retrying(() => this.dedupe.peek(event), 'Redis lookup', live)
          if (!memory) return ConsumerStatus.REQUEUE
          const decision = classifyEvent(memory.value, event.version, Date.now() >= waitUntil)
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
    // Redis down: keep trying; if the consumer is closed meanwhile, give up and let the broker redeliver.
    let outcome: Awaited<ReturnType<EventDedupe['record']>> | undefined
    for (let delay = this.s.retryInitial; outcome === undefined; delay = Math.min(delay * 2, this.s.retryMax)) {
      try {
        outcome = await this.dedupe.record(event)
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'order event consumer: Redis record failed; retrying')
        if (this.stop.signal.aborted) return ConsumerStatus.REQUEUE
        await sleep(delay, this.stop.signal)
      }
    }
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
