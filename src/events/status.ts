/**
 * The operator's view of the events (`shardctl events status`): per primary
 * outbox the unpublished depth, the age of the oldest unpublished event, the
 * events published in the last minute, and the relay lease (holder, token,
 * expiry); per order-event queue its depth against its cap, read with a
 * passive declare (the management plugin is not needed).
 *
 * While a queue is full (or a target is missing) the relay hands its events
 * off to the retry table: `depth` stays low, and `held` / `heldTargets` say
 * how many events each target is still owed and since when.
 *
 * Queues are named by convention `<service>.order-events.<NN>` (NN = the
 * partition, src/events/message.ts), so `services: ['billing']` checks the
 * twelve queues of that service; `queues` names others.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { Connection } from 'rabbitmq-client'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'
import { poolFor } from '../dualwrite/connections.js'
import { primaryDatabases } from '../dualwrite/placement.js'
import { openEventConnection } from './amqp.js'
import { EVENT_PARTITIONS } from './message.js'
import { OUTBOX_TABLE } from './outbox.js'
import { readRelayLeases } from './relay-lease.js'
import { heldTargets, type HeldTarget } from './outbox-retry.js'

/** The default queue cap (`x-max-length` of createOrderEventConsumer). */
export const QUEUE_CAP = 10_000

export interface OutboxStatus {
  readonly primary: string
  readonly side: 'legacy' | 'user'
  /** Unpublished events. */
  readonly depth: number
  /** Age of the oldest unpublished event (ms), null when drained. */
  readonly oldestAgeMs: number | null
  /** Events marked published in the last 60 s. */
  readonly publishedLastMinute: number
  /** Events handed off but still owed to a target that refused them (a full queue, a missing one): the retry table. */
  readonly held: number
  /** Per target (queue name, '' for the exchange): held events and the oldest hold's age. */
  readonly heldTargets: HeldTarget[]
  /** The lease holder ('' when none), its token, and ms until the lease expires (negative: expired). */
  readonly relay: { readonly holder: string; readonly token: number; readonly expiresInMs: number } | null
  /** `NOT_PROVISIONED`, or the driver's error code when the database did not answer. */
  readonly error?: string
}

export interface QueueStatus {
  readonly queue: string
  /** Ready messages (null when the queue does not exist or the broker did not answer). */
  readonly messages: number | null
  readonly consumers: number | null
  readonly cap: number
  /** messages / cap. */
  readonly fill: number | null
  readonly error?: string
}

export interface EventsStatus {
  readonly totalDepth: number
  /** Events held for a target over all outboxes. */
  readonly totalHeld: number
  /** The largest oldest-unpublished age over all outboxes: the relay's lag (ms). */
  readonly lagMs: number | null
  readonly publishedLastMinute: number
  readonly outboxes: OutboxStatus[]
  readonly queues: QueueStatus[]
}

/** Names of a service's order-event queues by convention: `billing.order-events.00` .. `.11`. */
export function conventionalQueues(service: string): string[] {
  return Array.from({ length: EVENT_PARTITIONS }, (_, i) => `${service}.order-events.${String(i).padStart(2, '0')}`)
}

/** Outbox depth, age, rate and lease per primary database. Never throws for one unreachable database. */
export async function readOutboxStatus(rt: Runtime): Promise<OutboxStatus[]> {
  const leases = await readRelayLeases(rt).catch(() => [])
  return Promise.all(
    primaryDatabases(rt.config).map(async (p): Promise<OutboxStatus> => {
      const l = leases.find((x) => x.outbox === p.name)
      const relay = l ? { holder: l.holder, token: l.token, expiresInMs: l.expiresInMs } : null
      try {
        const pool = poolFor(rt, p.host)
        const t = qualified(p.database, OUTBOX_TABLE)
        const [[a], [b], [c]] = await Promise.all([
          pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${t} WHERE published_at IS NULL`),
          pool.query<RowDataPacket[]>(`SELECT TIMESTAMPDIFF(MICROSECOND, occurred_at, NOW(3)) AS us FROM ${t} WHERE published_at IS NULL ORDER BY id LIMIT 1`),
          pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${t} WHERE published_at >= NOW(3) - INTERVAL 60 SECOND`),
        ])
        const us = b[0]?.us
        const held = await heldTargets(rt, p).catch(() => [])
        return {
          primary: p.name,
          side: p.side,
          depth: Number(a[0]!.n),
          oldestAgeMs: us === undefined || us === null ? null : Math.max(0, Math.round(Number(us) / 1000)),
          publishedLastMinute: Number(c[0]!.n),
          held: held.reduce((n, t) => n + t.count, 0),
          heldTargets: held,
          relay,
        }
      } catch (err) {
        const code = String((err as { code?: unknown }).code ?? 'UNKNOWN')
        return { primary: p.name, side: p.side, depth: 0, oldestAgeMs: null, publishedLastMinute: 0, held: 0, heldTargets: [], relay, error: code === 'ER_NO_SUCH_TABLE' ? 'NOT_PROVISIONED' : code }
      }
    }),
  )
}

/**
 * Depth of each named queue by passive declare (creates nothing).
 * @param conn a connection the caller owns; else one is opened from `config.events.url` and closed
 */
export async function readQueueStatus(rt: Runtime, queues: readonly string[], opts: { connection?: Connection; cap?: number; timeoutMs?: number } = {}): Promise<QueueStatus[]> {
  const cap = opts.cap ?? QUEUE_CAP
  if (queues.length === 0) return []
  const conn = opts.connection ?? openEventConnection(rt.config.events.url, { name: 'shardkit-events-status' })
  try {
    try {
      await conn.onConnect(opts.timeoutMs ?? 5_000, true)
    } catch (err) {
      const code = String((err as { code?: unknown }).code ?? 'UNREACHABLE')
      return queues.map((queue) => ({ queue, messages: null, consumers: null, cap, fill: null, error: code }))
    }
    const out: QueueStatus[] = []
    for (const queue of queues) {
      try {
        const r = await conn.queueDeclare({ queue, passive: true })
        out.push({ queue, messages: r.messageCount, consumers: r.consumerCount, cap, fill: r.messageCount / cap })
      } catch (err) {
        const code = String((err as { code?: unknown }).code ?? 'UNKNOWN')
        out.push({ queue, messages: null, consumers: null, cap, fill: null, error: code === 'NOT_FOUND' ? 'NOT_FOUND' : code })
      }
    }
    return out
  } finally {
    if (!opts.connection) await conn.close().catch(() => undefined)
  }
}

/** Outboxes and queues in one answer. */
export async function readEventsStatus(rt: Runtime, opts: { queues?: readonly string[]; services?: readonly string[]; connection?: Connection; cap?: number } = {}): Promise<EventsStatus> {
  const names = [...(opts.services ?? []).flatMap(conventionalQueues), ...(opts.queues ?? [])]
  const [outboxes, queues] = await Promise.all([readOutboxStatus(rt), readQueueStatus(rt, names, { ...(opts.connection ? { connection: opts.connection } : {}), ...(opts.cap ? { cap: opts.cap } : {}) })])
  const ages = outboxes.map((o) => o.oldestAgeMs).filter((x): x is number => x !== null)
  return {
    totalDepth: outboxes.reduce((n, o) => n + o.depth, 0),
    totalHeld: outboxes.reduce((n, o) => n + o.held, 0),
    lagMs: ages.length ? Math.max(...ages) : null,
    publishedLastMinute: outboxes.reduce((n, o) => n + o.publishedLastMinute, 0),
    outboxes,
    queues,
  }
}
