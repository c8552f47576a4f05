/**
 * The dual-write store: what an order service calls instead of writing the
 * orders table. Every call reads the stage once and follows its policy:
 *
 * 1. a transaction on the primary (legacy, or the user's shard) that passes
 *    the write fence at the stage version the call was planned under, writes
 *    the row (a delete also its tombstone), calls `onPrimaryWrite` (the events
 *    outbox), inserts a journal row naming the secondaries ("intent"), and commits;
 * 2. then each secondary gets the write's row, in the stage's order (or at
 *    once with `parallelSecondaries`), each copy bounded by
 *    `secondaryTimeoutMs` and guarded in its own statement (version,
 *    tombstone, deadline, fence: replicate.ts, copy-sql.ts), and the journal
 *    row is deleted in a batch. A secondary that fails leaves the journal row
 *    for the drainer; the request still succeeds.
 *
 * A change of the user column is refused (`SHARD_KEY_IMMUTABLE`): a new order
 * id carries its user's shard, and from `write-shards` on the user shard is
 * the primary, so a move would span two primaries with no common commit. A
 * change of the merchant column moves the merchant copy (the merchant
 * dimension is never a primary, and the journal keeps the old merchant).
 */
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { stagePolicy, type StagePolicy, type StageState } from '../cutover/stages.js'
import { isShardkitError, ShardkitError } from '../errors.js'
import { assertIdSyntax } from '../idgen/layout.js'
import { silentLogger, type Logger } from '../runtime/logger.js'
import type { Runtime } from '../runtime/runtime.js'
import { shardOfKey } from '../router/shard-function.js'
import { poolFor, rowShape } from './connections.js'
import { passFence } from './fence-gate.js'
import { insertJournalEntry } from './journal.js'
import { deleteLookup, readLookup, writeLookup } from './lookup.js'
import { assertIdMatchesUser, legacyLocation, primaryOf, routeOrderId, shardLocation, userShardLocation, type Location } from './placement.js'
import { getOrder, listOrders, type DualWriteStats, type OrderPage, type ReadContext } from './reads.js'
import { errorCode } from './replay.js'
import { replicate } from './replicate.js'
import { JournalClearer } from './journal-clearer.js'
import { DEAD, neverDeleted, tombstoneUpsertSql } from './tombstones.js'
import { phase } from '../runtime/phase-hooks.js'
import { qualified, quoteIdent } from '../runtime/mysql.js'
import type { DualWriteMetrics } from '../metrics/metrics.js'
import { assertKnownColumns, CREATED_COLUMN, deleteSql, formatDateTime, insertSql, selectByIdSql, toOrderRow, UPDATED_COLUMN, updateSql, valuesOf, VERSION_COLUMN, type OrderRow, type RowShape } from './row-sql.js'

export type { OrderRow } from './row-sql.js'
export type { DualWriteStats, OrderPage } from './reads.js'

/** The event a write records through `onPrimaryWrite` (the events outbox). */
export interface OrderEventInput {
  readonly type: 'created' | 'paid' | 'accepted' | 'delivering' | 'completed' | 'cancelled'
}

/** What `onPrimaryWrite` sees, inside the primary transaction. */
export interface PrimaryWriteContext {
  readonly conn: PoolConnection
  readonly database: string
  readonly side: 'legacy' | 'user'
  readonly op: 'insert' | 'update' | 'delete'
  /** After-image (before-image for delete). */
  readonly row: OrderRow
  readonly event?: OrderEventInput
}

/** The stage as the store needs it (the cutover's StageWatcher is one). */
export interface StageSource {
  current(): StageState | undefined
  readonly ready: boolean
  /** Reads the stage again now; `hint`: a newer version a database fence carries (the StageWatcher has it). */
  refresh?(hint?: number): Promise<void>
}

export interface DualWriteStoreOptions {
  readonly runtime: Runtime
  readonly stage: StageSource
  readonly logger?: Logger
  /** Called inside the primary transaction, after the row write, before commit. */
  readonly onPrimaryWrite?: (ctx: PrimaryWriteContext) => Promise<void>
  /** Bound on each secondary write (default 2000 ms). */
  readonly secondaryTimeoutMs?: number
  /**
   * Clock for created_at/updated_at. Default: the primary database's clock,
   * read with the fence (so `verify --since` and every guard see one clock,
   * whatever the instances' clocks say); this machine's clock only where the
   * primary has no fence yet (stage `legacy` before the first move).
   */
  readonly now?: () => number
  /** Random source for shadow-read sampling (default Math.random). */
  readonly random?: () => number
  /** Write the secondaries at once instead of in the stage's order (default false). Each is idempotent and journaled either way. */
  readonly parallelSecondaries?: boolean
  /**
   * Return once the primary has committed and write the secondaries in the
   * background (default false). Faster, but a read that goes to the shards
   * (read-shards, merchant lists) may not see the write for a few ms.
   * Safe either way: the journal row committed with the primary write.
   */
  readonly asyncSecondaries?: boolean
  /** Prometheus metrics (src/metrics): latency per stage and side, failures, journal appends, fence refusals. */
  readonly metrics?: DualWriteMetrics
}

type Op = 'insert' | 'update' | 'delete'
interface WriteResult {
  readonly row: OrderRow
  readonly keys: { userId: string; merchantId: string }
  readonly prevMerchantId?: string
}

/**
 * Inserts, updates, deletes and reads orders where the current stage says.
 * @example
 * const store = new DualWriteStore({ runtime: rt, stage: watcher, onPrimaryWrite: outbox.hook })
 * await store.insert({ order_id: id, user_id: '42', merchant_id: '7', status: 'created', ... })
 */
export class DualWriteStore {
  private readonly rt: Runtime
  private readonly stage: StageSource
  private readonly logger: Logger
  private readonly hook: DualWriteStoreOptions['onPrimaryWrite']
  private readonly timeoutMs: number
  private readonly now: (() => number) | undefined
  private readonly random: () => number
  private readonly parallel: boolean
  private readonly clearer: JournalClearer
  private readonly asyncSecondaries: boolean
  private readonly metrics: DualWriteMetrics | undefined
  private readonly inFlight = new Set<Promise<void>>()
  private readonly counters: DualWriteStats = { writes: 0, secondaryFailures: 0, lockedReplays: 0, fenceRejections: 0, shadowReads: 0, shadowMismatches: 0, shadowErrors: 0 }

  constructor(opts: DualWriteStoreOptions) {
    const t = opts.secondaryTimeoutMs ?? 2_000
    if (!Number.isInteger(t) || t < 1 || t > 60_000) throw new ShardkitError('USAGE', `secondaryTimeoutMs must be a whole number of ms from 1 to 60000 (got ${String(t)})`, { argument: 'secondaryTimeoutMs' })
    this.rt = opts.runtime
    this.stage = opts.stage
    this.logger = opts.logger ?? silentLogger
    this.hook = opts.onPrimaryWrite
    this.timeoutMs = t
    this.now = opts.now
    this.random = opts.random ?? Math.random
    this.parallel = opts.parallelSecondaries ?? false
    this.clearer = new JournalClearer(this.rt, this.logger)
    this.asyncSecondaries = opts.asyncSecondaries ?? false
    this.metrics = opts.metrics
  }

  /**
   * Deletes the journal rows of completed writes now (they are batched every
   * few ms). Call before shutdown; rows left behind are only replayed again.
   */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight])
    await this.clearer.flush()
  }

  /** Counters since construction (a copy). */
  stats(): DualWriteStats {
    return { ...this.counters }
  }

  /**
   * Inserts a new order. Columns left out get the table's defaults; `version`
   * defaults to 1 and created_at/updated_at to now (UTC).
   * @throws ShardkitError `ORDER_EXISTS`, `ID_INVALID` (id/user shard mismatch), `FENCE_REJECTED` (retryable), `USAGE`
   */
  async insert(row: OrderRow, opts: { event?: OrderEventInput } = {}): Promise<void> {
    const shape = await rowShape(this.rt)
    assertKnownColumns(shape, row, 'row')
    const orderId = row[shape.primaryKey]
    assertIdSyntax(orderId, `row.${shape.primaryKey}`)
    const userId = keyOf(row, shape.userColumn)
    const merchantId = keyOf(row, shape.merchantColumn)
    assertIdMatchesUser(this.rt.config, orderId, userId)
    const full: OrderRow = { ...row, [VERSION_COLUMN]: row[VERSION_COLUMN] ?? 1 }
    const state = this.state()
    const policy = stagePolicy(state)
    // Legacy ids route through order_lookup once anything reads or writes the shards; at `legacy`, backfill fills it later.
    if (state.stage !== 'legacy' && routeOrderId(this.rt.config, orderId).kind === 'legacy') await writeLookup(this.rt, { orderId, userId, merchantId })
    const at = policy.writePrimary === 'legacy' ? legacyLocation(this.rt.config) : shardLocation(this.rt.config, 'user', userId)
    await this.write(shape, state, policy, at, orderId, 'insert', opts.event, async (conn, now) => {
      for (const c of [CREATED_COLUMN, UPDATED_COLUMN]) if (shape.columns.includes(c) && full[c] === undefined) full[c] = now
      const cols = Object.keys(full)
      try {
        if (policy.writeSecondaries.length === 0) await conn.query(insertSql(cols, at), valuesOf(full, cols))
        else {
          // Once copies exist, an id deleted since (its tombstone on the primary) is never taken again:
          // every copy would refuse it, and a late copy of the old order must stay out.
          const [res] = await conn.query<ResultSetHeader>(insertNeverDeletedSql(cols, at), [...valuesOf(full, cols), orderId, at.table])
          if (res.affectedRows === 0) throw new ShardkitError('ORDER_EXISTS', `order ${orderId} was deleted and its id cannot be used again; issue a new id`, { orderId })
        }
      } catch (err) {
        if (errorCode(err) === 'ER_DUP_ENTRY') throw new ShardkitError('ORDER_EXISTS', `order ${orderId} already exists; update it instead, or issue a new id`, { orderId })
        throw err
      }
      // The row as written (keys, version, times); columns left to their defaults get the same defaults in the copies.
      return { row: full, keys: { userId, merchantId } }
    })
  }

  /**
   * Applies `patch` to an order and returns the new row (version + 1).
   * @throws ShardkitError `ORDER_NOT_FOUND`, `VERSION_CONFLICT` (expectedVersion differs), `SHARD_KEY_IMMUTABLE` (user change), `FENCE_REJECTED`
   */
  async update(orderId: string, patch: OrderRow, opts: { event?: OrderEventInput; expectedVersion?: number } = {}): Promise<OrderRow> {
    const shape = await rowShape(this.rt)
    assertIdSyntax(orderId)
    assertKnownColumns(shape, patch, 'patch')
    if (patch[shape.primaryKey] !== undefined && String(patch[shape.primaryKey]) !== orderId) {
      throw new ShardkitError('USAGE', `patch changes ${shape.primaryKey}; an order id never changes: insert a new order instead`, { orderId })
    }
    if (patch[shape.merchantColumn] !== undefined) keyOf(patch, shape.merchantColumn)
    const state = this.state()
    const policy = stagePolicy(state)
    const at = await this.primaryLocationOf(policy, orderId)
    const result = await this.write(shape, state, policy, at, orderId, 'update', opts.event, async (conn, now) => {
      const old = await selectRow(conn, shape, at, orderId, 'update')
      if (!old) throw notFound(orderId)
      if (opts.expectedVersion !== undefined && Number(old[VERSION_COLUMN]) !== opts.expectedVersion) {
        throw new ShardkitError('VERSION_CONFLICT', `order ${orderId} is at version ${String(old[VERSION_COLUMN])}, not ${opts.expectedVersion}; read it again and retry`, { orderId })
      }
      const userId = String(old[shape.userColumn])
      if (patch[shape.userColumn] !== undefined && String(patch[shape.userColumn]) !== userId) {
        throw new ShardkitError('SHARD_KEY_IMMUTABLE', `order ${orderId} cannot change ${shape.userColumn}: an order id carries its user's shard; cancel it and create a new order for the other user`, { orderId })
      }
      const after: OrderRow = { ...old, ...patch, [VERSION_COLUMN]: Number(old[VERSION_COLUMN]) + 1 }
      if (shape.columns.includes(UPDATED_COLUMN) && patch[UPDATED_COLUMN] === undefined) after[UPDATED_COLUMN] = now
      const cols = shape.columns.filter((c) => c !== shape.primaryKey)
      await conn.query(updateSql(shape, at), [...valuesOf(after, cols), orderId])
      const merchantId = String(after[shape.merchantColumn])
      const prev = String(old[shape.merchantColumn])
      return { row: after, keys: { userId, merchantId }, ...(prev !== merchantId ? { prevMerchantId: prev } : {}) }
    })
    if (state.stage !== 'legacy' && result!.prevMerchantId !== undefined && routeOrderId(this.rt.config, orderId).kind === 'legacy') {
      await writeLookup(this.rt, { orderId, ...result!.keys }).catch((err) => this.logger.warn({ orderId, code: errorCode(err) }, 'order_lookup refresh failed'))
    }
    return result!.row
  }

  /** Deletes an order everywhere the stage writes. Deleting a missing order does nothing. */
  async delete(orderId: string): Promise<void> {
    const shape = await rowShape(this.rt)
    assertIdSyntax(orderId)
    const state = this.state()
    const policy = stagePolicy(state)
    let at: Location
    try {
      at = await this.primaryLocationOf(policy, orderId)
    } catch (err) {
      if (isShardkitError(err, 'ORDER_NOT_FOUND')) return
      throw err
    }
    const result = await this.write(shape, state, policy, at, orderId, 'delete', undefined, async (conn) => {
      const old = await selectRow(conn, shape, at, orderId, 'update')
      if (!old) return undefined
      // The primary's tombstone, in the delete's own transaction: the id is never taken again, and
      // the copies' deletes (replay.ts) write theirs before removing the row.
      if (policy.writeSecondaries.length > 0) await conn.query(tombstoneUpsertSql(at.database), [orderId, at.table, DEAD])
      await conn.query(deleteSql(shape, at), [orderId])
      return { row: old, keys: { userId: String(old[shape.userColumn]), merchantId: String(old[shape.merchantColumn]) } }
    })
    if (result && state.stage !== 'legacy' && routeOrderId(this.rt.config, orderId).kind === 'legacy') {
      await deleteLookup(this.rt, orderId).catch((err) => this.logger.warn({ orderId, code: errorCode(err) }, 'order_lookup delete failed'))
    }
  }

  /** One order from legacy or its user shard, as the stage and the read ramp say. */
  async get(orderId: string): Promise<OrderRow | undefined> {
    assertIdSyntax(orderId)
    return getOrder(await this.readContext(), orderId)
  }

  /** A user's orders, newest first; pass `nextCursor` back for the next page. */
  async listByUser(userId: string, opts: { limit?: number; cursor?: string } = {}): Promise<OrderPage> {
    shardOfKey(userId, 'userId')
    return listOrders(await this.readContext(), 'user', userId, opts)
  }

  /** A merchant's orders, newest first, from legacy or the merchant dimension. */
  async listByMerchant(merchantId: string, opts: { limit?: number; cursor?: string } = {}): Promise<OrderPage> {
    shardOfKey(merchantId, 'merchantId')
    return listOrders(await this.readContext(), 'merchant', merchantId, opts)
  }

  private state(): StageState {
    const s = this.stage.current()
    if (!s) throw new ShardkitError('PRECONDITION_FAILED', 'the stage is not known yet: start the StageWatcher (await watcher.start()) before using the store', {}, { retryable: true })
    return s
  }

  private async readContext(): Promise<ReadContext> {
    return { rt: this.rt, shape: await rowShape(this.rt), state: this.state(), stats: this.counters, logger: this.logger, random: this.random }
  }

  /** Where an existing order lives on the primary. */
  private async primaryLocationOf(policy: StagePolicy, orderId: string): Promise<Location> {
    if (policy.writePrimary === 'legacy') return legacyLocation(this.rt.config)
    const r = routeOrderId(this.rt.config, orderId)
    if (r.kind === 'new') return userShardLocation(this.rt.config, r.shard)
    const lk = await readLookup(this.rt, orderId)
    if (!lk) throw notFound(orderId)
    return shardLocation(this.rt.config, 'user', lk.userId)
  }

  private async write(shape: RowShape, state: StageState, policy: StagePolicy, at: Location, orderId: string, op: Op, event: OrderEventInput | undefined, body: (conn: PoolConnection, now: string) => Promise<WriteResult | undefined>): Promise<WriteResult | undefined> {
    const primary = primaryOf(at)
    const t0 = performance.now()
    let conn: PoolConnection
    try {
      conn = await poolFor(this.rt, primary.host).getConnection()
    } catch (err) {
      this.metrics?.primaryFailed(state.stage, primary.side, op, t0, err)
      throw primaryError(err, primary.name)
    }
    let result: WriteResult | undefined
    let journalId: string | undefined
    try {
      await conn.beginTransaction()
      const fence = await passFence(conn, primary.database, state)
      result = await body(conn, this.now ? formatDateTime(this.now()) : (fence.now ?? formatDateTime(Date.now())))
      if (result && this.hook) await this.hook({ conn, database: primary.database, side: primary.side, op, row: result.row, ...(event ? { event } : {}) })
      if (result && policy.writeSecondaries.length > 0) {
        journalId = await insertJournalEntry(conn, primary.database, { orderId, op, secondaries: policy.writeSecondaries, ...result.keys, ...(result.prevMerchantId ? { prevMerchantId: result.prevMerchantId } : {}) })
      }
      await conn.commit()
    } catch (err) {
      await conn.rollback().catch(() => undefined)
      if (isShardkitError(err, 'FENCE_REJECTED')) {
        this.counters.fenceRejections++
        // The database knows a newer version than this instance: learn it now rather than at the next
        // poll (a Redis that lost the change, or its data, would never deliver it).
        const fv = err.details.fenceVersion
        if (typeof fv === 'number' && fv > state.version) this.stage.refresh?.(fv).catch(() => undefined)
      }
      this.metrics?.primaryFailed(state.stage, primary.side, op, t0, err)
      throw primaryError(err, primary.name)
    } finally {
      conn.release()
    }
    this.counters.writes++
    this.metrics?.primaryCommitted(state.stage, primary.side, op, t0, journalId !== undefined)
    if (result && journalId !== undefined) {
      const t1 = performance.now()
      await phase('dualwrite.primary-committed', { orderId, op, primary: primary.name, version: state.version })
      const job = replicate(
        { rt: this.rt, shape, timeoutMs: this.timeoutMs, parallel: this.parallel, clearer: this.clearer },
        { primary, at, orderId, image: op === 'delete' ? undefined : result.row, keys: result.keys, ...(result.prevMerchantId ? { prevMerchantId: result.prevMerchantId } : {}), secondaries: policy.writeSecondaries, journalId, plannedVersion: state.version },
      ).then(
        (out) => {
          this.metrics?.secondariesDone(state.stage, t1, out)
          if (out.reread) this.counters.lockedReplays++
          if (out.ok) return
          this.counters.secondaryFailures++
          this.logger.warn({ orderId, op, failures: out.failures }, 'dual write: a secondary failed; journaled for the drainer')
        },
        (err: unknown) => {
          // The primary committed; its journal row stays for the drainer.
          this.metrics?.secondariesDone(state.stage, t1, { error: err })
          this.counters.secondaryFailures++
          this.logger.warn({ orderId, op, code: errorCode(err) }, 'dual write: replication after commit failed; journaled for the drainer')
        },
      )
      if (this.asyncSecondaries) {
        this.inFlight.add(job)
        void job.finally(() => this.inFlight.delete(job))
      } else await job
    }
    return result
  }
}

/** The primary's insert once copies exist: refused (0 rows) when the id has a delete's tombstone (bind the values, order id, table). */
function insertNeverDeletedSql(columns: readonly string[], at: Location): string {
  return `INSERT INTO ${qualified(at.database, at.table)} (${columns.map(quoteIdent).join(', ')}) SELECT ${columns.map(() => '?').join(', ')} FROM DUAL WHERE ${neverDeleted(at.database)}`
}

function keyOf(row: OrderRow, column: string): string {
  const v = row[column]
  const s = typeof v === 'number' ? String(v) : v
  if (typeof s !== 'string') throw new ShardkitError('USAGE', `row.${column} is required: give it as a decimal string`, { argument: column })
  shardOfKey(s, column)
  return s
}

function notFound(orderId: string): ShardkitError {
  return new ShardkitError('ORDER_NOT_FOUND', `order ${orderId} does not exist where the current stage writes it`, { orderId })
}

async function selectRow(conn: PoolConnection, shape: RowShape, at: Location, orderId: string, lock: '' | 'update'): Promise<OrderRow | undefined> {
  const [rows] = await conn.query<RowDataPacket[]>(selectByIdSql(shape, at, lock), [orderId])
  return rows[0] ? toOrderRow(rows[0], shape.columns) : undefined
}

/** Driver errors on the primary become DB_ERROR (retryable for lock waits and deadlocks); ShardkitErrors pass through. */
function primaryError(err: unknown, primary: string): unknown {
  if (err instanceof ShardkitError) return err
  const code = errorCode(err)
  if (code === 'ER_NO_SUCH_TABLE') {
    return new ShardkitError('PRECONDITION_FAILED', `a table is missing on primary ${primary} (the shard table or shardkit_journal); run \`shardctl provision\``, { primary }, { cause: err })
  }
  const retryable = ['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET', 'PROTOCOL_CONNECTION_LOST'].includes(code)
  return new ShardkitError('DB_ERROR', `the write failed on primary ${primary} (${code})${retryable ? '; retry it' : ''} (if the connection broke at COMMIT the outcome is unknown: read the order before retrying)`, { primary, code }, { cause: err, retryable })
}
