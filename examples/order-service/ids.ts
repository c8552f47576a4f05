/**
 * The service's id source: shardkit's id generator holding a worker lease
 * from the control database (new ids carry the user's shard). With
 * `mirror` (the service's `--id-mirror`), every reservation is also kept in
 * Redis (`MirroredLeaseStore`), so a control-database failover that loses the
 * last lease write issues no duplicate id; the price is a wait of one lease
 * TTL + maxLeadMs on a worker Redis holds no record of (README, "Order ids").
 */
import { isShardkitError, MirroredLeaseStore, MysqlLeaseStore, openIdGenerator, RedisLeaseMirror, type Logger, type Runtime } from '../../src/index.js'
import type { IdSource } from './routes/orders.js'

/** An id source the composition root opens and closes. */
export interface OpenIdSource {
  readonly source: IdSource
  /** False once the lease is lost (the service then reports not ready). */
  ready(): boolean
  /** Stops issuing and releases the lease. */
  close(): Promise<void>
}

/** Leases a worker number on the control database and starts the generator (renewing on a timer). */
export async function openIdSource(rt: Runtime, opts: { owner: string; logger: Logger; mirror?: boolean }): Promise<OpenIdSource> {
  const rows = new MysqlLeaseStore(rt.controlServer(), rt.config.control.database)
  const gen = await openIdGenerator({
    store: opts.mirror ? new MirroredLeaseStore(rows, new RedisLeaseMirror({ redis: rt.redis(), keyPrefix: rt.config.redis.keyPrefix })) : rows,
    owner: opts.owner,
    logger: opts.logger,
    leaseTtlMs: rt.config.idgen.leaseTtlMs,
    maxLeadMs: rt.config.idgen.maxLeadMs,
  })
  return {
    source: {
      next(userId) {
        try {
          return gen.nextId(userId)
        } catch (err) {
          // Ahead of the clock or mid-renewal: wait on timers (bounded) instead of failing the request.
          if (isShardkitError(err) && err.retryable) return gen.nextIdsAsync(userId, 1, { maxStallMs: 2_000 }).then((ids) => ids[0]!)
          throw err
        }
      },
    },
    ready: () => gen.status().state === 'active',
    close: () => gen.close(),
  }
}
