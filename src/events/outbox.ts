/**
 * The transactional outbox: `createOutboxHook()` is the dual-write store's
 * `onPrimaryWrite`. It runs inside the primary transaction, after the row
 * write and before commit, and appends one event row to `shardkit_outbox` in
 * the primary's own database, so the event commits or rolls back with the
 * order. Only the primary write calls it (src/dualwrite/store.ts `write`):
 * secondary copies, journal replays (replicate.ts, drainer.ts), backfill and
 * repair write through other paths and never emit.
 *
 * Which change is announced: the caller's `event.type` when given; else an
 * insert is `created` and an update announces the order's status after the
 * change when it is one of the event types, so every version has an event and
 * a consumer sees contiguous versions. A delete (or a status outside the
 * event types) emits nothing.
 *
 * The row carries the fence version the write passed (read by the INSERT
 * itself, under the share lock the store already holds): the relay's barrier
 * across a write flip (src/events/outbox-store.ts).
 *
 * Key columns: the legacy table's, as the config names them
 * (`legacy.primaryKey`, `userColumn`, `merchantColumn`, the way the store
 * reads them): pass `createOutboxHook({ config: rt.config })`. An explicit
 * `orderColumn` etc. wins; without either the names default to
 * `order_id` / `user_id` / `merchant_id`, and a row without them fails naming
 * the option to pass.
 */
import { ShardkitError } from '../errors.js'
import type { ShardkitConfig } from '../config/schema.js'
import type { PrimaryWriteContext } from '../dualwrite/store.js'
import { qualified } from '../runtime/mysql.js'
import { EVENT_TYPES, type OrderEventType } from './message.js'
import { newEventId } from './event-id.js'

/** The outbox table's name in every primary database. */
export const OUTBOX_TABLE = 'shardkit_outbox'
/** The fencing-token row the relay stamps into every outbox database. */
export const RELAY_TOKEN_TABLE = 'shardkit_relay_token'

/** Column names of the order row the hook reads (the legacy table's, as the store's examples use). */
export interface OutboxHookOptions {
  /** The config whose `legacy.primaryKey`, `userColumn` and `merchantColumn` name the key columns (as the dual-write store reads them). */
  readonly config?: Pick<ShardkitConfig, 'legacy'>
  /** Order id column (default `config.legacy.primaryKey`, else `order_id`). */
  readonly orderColumn?: string
  /** User id column (default `config.legacy.userColumn`, else `user_id`). */
  readonly userColumn?: string
  /** Merchant id column (default `config.legacy.merchantColumn`, else `merchant_id`). */
  readonly merchantColumn?: string
  /** Status column, for updates without an explicit event (default `status`). */
  readonly statusColumn?: string
  /** Clock for `occurred_at` (default Date.now). */
  readonly now?: () => number
}

/** The event type of a write, or undefined when it announces nothing (pure). */
export function eventTypeOf(ctx: Pick<PrimaryWriteContext, 'op' | 'row' | 'event'>, statusColumn = 'status'): OrderEventType | undefined {
  if (ctx.event) return ctx.event.type
  if (ctx.op === 'insert') return 'created'
  if (ctx.op === 'update') {
    const s = ctx.row[statusColumn]
    return EVENT_TYPES.includes(s as OrderEventType) ? (s as OrderEventType) : undefined
  }
  return undefined
}

function idOf(row: PrimaryWriteContext['row'], column: string, configured: boolean): string {
  const v = row[column]
  if (typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && /^[0-9]{1,20}$/.test(v))) return String(v)
  const hint = configured ? '' : '; if the legacy table names it otherwise, create the hook with createOutboxHook({ config: rt.config })'
  throw new ShardkitError('INTERNAL', `the order row has no decimal ${column}; the outbox hook needs it${hint}`, { column })
}

/** `YYYY-MM-DD HH:MM:SS.mmm` in UTC. */
function dateTime3(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 23)
}

/**
 * The `onPrimaryWrite` hook that appends the order event to the primary's outbox.
 * @throws ShardkitError `PRECONDITION_FAILED` when the outbox table is missing (run `shardctl provision`); the driver's error otherwise (the store rolls the write back)
 * @example
 * const store = new DualWriteStore({ runtime: rt, stage: watcher, onPrimaryWrite: createOutboxHook({ config: rt.config }) })
 */
export function createOutboxHook(opts: OutboxHookOptions = {}): (ctx: PrimaryWriteContext) => Promise<void> {
  const legacy = opts.config?.legacy
  const orderCol = opts.orderColumn ?? legacy?.primaryKey ?? 'order_id'
  const userCol = opts.userColumn ?? legacy?.userColumn ?? 'user_id'
  const merchantCol = opts.merchantColumn ?? legacy?.merchantColumn ?? 'merchant_id'
  const configured = legacy !== undefined
  const statusCol = opts.statusColumn ?? 'status'
  const now = opts.now ?? Date.now
  return async (ctx) => {
    const type = eventTypeOf(ctx, statusCol)
    if (type === undefined) return
    const version = Number(ctx.row.version)
    if (!Number.isSafeInteger(version) || version < 1) throw new ShardkitError('INTERNAL', 'the order row has no version; the outbox needs it', { database: ctx.database })
    // One round trip: the fence version is read by the INSERT itself (the store holds that row in share
    // mode already, so it cannot change before commit). A fence-less primary (stage legacy, before the
    // first switch) records version 0.
    try {
      await ctx.conn.query(
        `INSERT INTO ${qualified(ctx.database, OUTBOX_TABLE)} (event_id, order_id, user_id, merchant_id, type, version, stage_version, occurred_at)
         SELECT ?, ?, ?, ?, ?, ?, COALESCE((SELECT f.stage_version FROM ${qualified(ctx.database, 'shardkit_fence')} f WHERE f.id = 1), 0), ?`,
        [newEventId(), idOf(ctx.row, orderCol, configured), idOf(ctx.row, userCol, configured), idOf(ctx.row, merchantCol, configured), type, version, dateTime3(now())],
      )
    } catch (err) {
      if ((err as { code?: string }).code === 'ER_NO_SUCH_TABLE') {
        throw new ShardkitError('PRECONDITION_FAILED', `${ctx.database} has no ${OUTBOX_TABLE} or shardkit_fence table; run \`shardctl provision\``, { database: ctx.database }, { cause: err })
      }
      throw err
    }
  }
}
