/**
 * The stage as one service instance sees it. Changes arrive through Redis
 * pub/sub (well under 100 ms) with a poll as the fallback; after applying a
 * version the instance heartbeats it at once, so a switch can see every live
 * instance acknowledge. An instance that loses Redis keeps the last stage it
 * knew and reports itself not ready; it never guesses a stage (the write
 * fence refuses its writes at the database if the stage moved meanwhile).
 */
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { Runtime } from '../runtime/runtime.js'
import type { Logger } from '../runtime/logger.js'
import type { StageState } from './stages.js'
import { cutoverKeys, parseStageState, readDurableStage, readRedisStage, removeHeartbeat, writeHeartbeat } from './switch-store.js'
import { INITIAL_STAGE_STATE } from './transitions.js'
import type { WatcherMetrics } from '../metrics/metrics.js'

/** What the dual-write store needs from the stage. */
export interface StageSource {
  /** Last known state; undefined before the first read. */
  current(): StageState | undefined
  /** False while the stage is unknown or Redis is lost. */
  readonly ready: boolean
  /** Reads the stage again now; `hint`: a newer version a fence already carries. */
  refresh?(hint?: number): Promise<void>
}

/** Options of a {@link StageWatcher}. */
export interface StageWatcherOptions {
  /** Unique per live instance (heartbeats are keyed by it). */
  readonly instanceId: string
  readonly logger?: Logger
  /** Poll interval, the fallback when a published change is missed (default 1000). */
  readonly pollMs?: number
  /** Heartbeat interval (default 1000). */
  readonly heartbeatMs?: number
  /** How long a heartbeat keeps an instance live (default 3 x heartbeatMs). */
  readonly heartbeatTtlMs?: number
  /** Bound on each Redis call before the instance counts Redis as lost (default 1000). */
  readonly redisTimeoutMs?: number
  /** Prometheus metrics (src/metrics): the applied stage version and the heartbeat age. */
  readonly metrics?: WatcherMetrics
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * Follows the stage for one instance.
 * @example
 * const watcher = new StageWatcher(rt, { instanceId: `orders-${process.pid}` })
 * await watcher.start()
 * const store = new DualWriteStore({ runtime: rt, stage: watcher })
 */
export class StageWatcher extends EventEmitter implements StageSource {
  readonly instanceId: string
  private readonly rt: Runtime
  private readonly logger: Logger
  private readonly prefix: string
  private readonly pollMs: number
  private readonly heartbeatMs: number
  private readonly ttlMs: number
  private readonly redisTimeoutMs: number
  private state: StageState | undefined
  private redisOk = false
  private subscribed = false
  private sub: Redis | undefined
  private pollTimer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private closed = false
  private refreshing: Promise<void> | undefined
  private readonly metrics: WatcherMetrics | undefined

  constructor(rt: Runtime, opts: StageWatcherOptions) {
    super()
    if (!opts.instanceId) throw new TypeError('StageWatcher: instanceId must be a non-empty string')
    this.rt = rt
    this.instanceId = opts.instanceId
    this.logger = opts.logger ?? rt.logger
    this.prefix = rt.config.redis.keyPrefix
    this.pollMs = opts.pollMs ?? 1_000
    this.heartbeatMs = opts.heartbeatMs ?? 1_000
    this.ttlMs = opts.heartbeatTtlMs ?? 3 * this.heartbeatMs
    this.redisTimeoutMs = opts.redisTimeoutMs ?? 1_000
    this.metrics = opts.metrics
  }

  /** Last known stage; undefined before the first read. */
  current(): StageState | undefined {
    return this.state
  }

  /** True when the stage is known and Redis (commands and subscription) is reachable. */
  get ready(): boolean {
    return !this.closed && this.state !== undefined && this.redisOk && this.subscribed
  }

  override on(event: 'change', fn: (s: StageState) => void): this {
    return super.on(event, fn)
  }

  /**
   * Reads the stage (Redis, else the control database's durable copy, else
   * `legacy` v0 when Redis answers that none was ever set), subscribes,
   * starts polling and heartbeating. Resolves even when Redis is down (not ready).
   */
  async start(): Promise<void> {
    const keys = cutoverKeys(this.prefix)
    this.sub = this.rt.redisSubscriber()
    this.sub.on('message', (_channel: string, text: string) => this.apply(parseStageState(text), 'pubsub'))
    this.sub.on('close', () => {
      this.subscribed = false
    })
    // ioredis re-subscribes after a reconnect; 'ready' tells us it is back.
    this.sub.on('ready', () => {
      if (this.closed) return
      this.sub!.subscribe(keys.channel).then(() => {
        this.subscribed = true
        void this.poll()
      }, () => undefined)
    })
    try {
      await withTimeout(this.sub.subscribe(keys.channel), this.redisTimeoutMs)
      this.subscribed = true
    } catch (err) {
      this.logger.warn({ instanceId: this.instanceId, err: (err as Error).message }, 'stage watcher: cannot subscribe; not ready until Redis answers')
    }
    await this.poll()
    if (this.state === undefined) {
      try {
        const durable = await readDurableStage(this.rt)
        if (durable) this.apply(durable.state, 'control-db')
      } catch (err) {
        this.logger.warn({ instanceId: this.instanceId, err: (err as Error).message }, 'stage watcher: cannot read the durable stage either; stage unknown')
      }
    }
    this.pollTimer = setInterval(() => void this.poll(), this.pollMs)
    this.pollTimer.unref()
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs)
    this.heartbeatTimer.unref()
  }

  private async poll(): Promise<void> {
    if (this.closed) return
    let s: StageState | undefined
    try {
      s = await withTimeout(readRedisStage(this.rt.redis(), this.prefix), this.redisTimeoutMs)
      this.redisOk = true
    } catch (err) {
      if (this.redisOk) this.logger.warn({ instanceId: this.instanceId, err: (err as Error).message }, 'stage watcher: Redis lost; keeping the last known stage, not ready')
      this.redisOk = false
      return
    }
    if (s) return this.apply(s, 'poll')
    // Redis answers but holds no stage: it restarted empty or was flushed (it keeps nothing on
    // disk). That is not "never set": the durable copy in the control database decides, and only
    // a fleet with no durable copy either starts at legacy v0.
    try {
      const durable = await readDurableStage(this.rt)
      if (durable) this.apply(durable.state, 'control-db')
      else if (this.state === undefined) this.apply(INITIAL_STAGE_STATE, 'poll')
    } catch (err) {
      this.logger.warn({ instanceId: this.instanceId, err: (err as Error).message }, 'stage watcher: Redis holds no stage and the durable copy cannot be read; stage unchanged')
    }
  }

  /**
   * Reads the stage now (Redis, else the durable copy). With `hint`, a
   * version some database fence already carries: when Redis does not reach
   * it (it lost the message, or its data), the durable copy is read too. The
   * store calls this when a fence refuses a write planned at an older
   * version. Concurrent calls share one read.
   */
  refresh(hint?: number): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        await this.poll()
        if (hint !== undefined && (this.state?.version ?? -1) < hint) {
          const durable = await readDurableStage(this.rt).catch(() => undefined)
          if (durable) this.apply(durable.state, 'control-db')
        }
      } finally {
        this.refreshing = undefined
      }
    })()
    return this.refreshing
  }

  private apply(s: StageState | undefined, via: string): void {
    if (this.closed || s === undefined) return
    if (this.state !== undefined && s.version <= this.state.version) return
    const from = this.state
    this.state = s
    this.logger.info({ instanceId: this.instanceId, from: from?.stage, to: s.stage, version: s.version, readPercent: s.readPercent, via }, 'stage applied')
    this.metrics?.stageApplied(s)
    void this.heartbeat()
    this.emit('change', s)
  }

  private async heartbeat(): Promise<void> {
    const s = this.state
    if (this.closed || s === undefined) return
    try {
      await withTimeout(writeHeartbeat(this.rt.redis(), this.prefix, this.instanceId, s, this.ttlMs), this.redisTimeoutMs)
      this.metrics?.heartbeatWritten()
    } catch (err) {
      this.logger.debug({ instanceId: this.instanceId, err: (err as Error).message }, 'stage watcher: heartbeat failed')
      this.redisOk = false
    }
  }

  /** Stops polling and heartbeating, removes this instance's heartbeat, unsubscribes. Does not close the runtime. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.pollTimer)
    clearInterval(this.heartbeatTimer)
    await withTimeout(removeHeartbeat(this.rt.redis(), this.prefix, this.instanceId), this.redisTimeoutMs).catch(() => undefined)
    if (this.sub) {
      const sub = this.sub
      await withTimeout(sub.quit(), this.redisTimeoutMs).catch(() => sub.disconnect())
    }
  }
}
