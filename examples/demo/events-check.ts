/**
 * The rehearsal's order-event check: a consumer on all 12 partitions (queues
 * `<prefix>check.order-events.NN`) runs from before the first request to
 * after the last, and at the end proves that every acknowledged order's
 * events arrived exactly once and in version order across the whole
 * migration: for each order, the versions handed to `handle` are exactly
 * 1..(the row's final version in its user shard), each once, no gap reported,
 * and none had to wait for an earlier version (arrival order was already
 * right). Duplicate deliveries (at-least-once relay) are dropped by the
 * consumer and reported. Events of orders this run did not acknowledge
 * (another run on the same exchange) are counted and ignored.
 * `startRelayKillSwitch` lets the rehearsal kill a relay at the worst moment:
 * after the broker confirmed a batch, before the outbox rows are marked.
 * Memory: a few numbers per order; fine for a rehearsal's thousands of orders.
 */
import net from 'node:net'
import type { RowDataPacket } from 'mysql2/promise'
import { qualified, quoteIdent, type Runtime } from '../../src/index.js'
import { createPartitionConsumers, type PartitionConsumers } from '../../src/events/consumer-group.js'
import type { ConsumerCounters } from '../../src/events/consumer.js'
import { openEventConnection } from '../../src/events/amqp.js'

/** What the check found. */
export interface EventsReport {
  readonly acknowledged: number
  /** Orders whose handled versions are exactly 1..final, once each, in order. */
  readonly exactlyOnceInOrder: number
  /** Sample: orders missing events at the end (`id: got/expected`). */
  readonly incomplete: readonly string[]
  /** Sample: orders with a version handled twice, out of order, or past the final version. */
  readonly disordered: readonly string[]
  /** Events handed to `handle` in all. */
  readonly handled: number
  /** Events of orders this run did not acknowledge (ignored). */
  readonly foreign: number
  readonly consumer: Readonly<ConsumerCounters>
  /** Time from traffic stop until the last expected event was handled. */
  readonly drainMs: number
  readonly ok: boolean
}

export interface EventsCheck {
  /** Waits (up to `timeoutMs`) until every acknowledged order's events are in, then judges. */
  settle(ids: readonly string[], timeoutMs?: number): Promise<EventsReport>
  /** Stops the consumers; with `deleteQueues`, removes the 12 queues too. Idempotent. */
  close(deleteQueues: boolean): Promise<void>
}

interface Seen {
  versions: number[]
  eventIds: Set<string>
  problem?: string
}

const CHUNK = 2_000
const sample = (xs: string[]) => xs.slice(0, 10)

/** Starts the consumers; call before the first order is written. */
export async function startEventsCheck(rt: Runtime, o: { service: string; log: (line: string) => void }): Promise<EventsCheck> {
  const byOrder = new Map<string, Seen>()
  let handled = 0
  const group: PartitionConsumers = await createPartitionConsumers({
    runtime: rt,
    service: o.service,
    // Long enough to ride over a relay restart; a gap still fails the check.
    gapWaitMs: 10_000,
    handle: (event, ctx) => {
      handled++
      let s = byOrder.get(event.orderId)
      if (!s) byOrder.set(event.orderId, (s = { versions: [], eventIds: new Set() }))
      const last = s.versions.at(-1) ?? 0
      if (s.eventIds.has(event.eventId)) s.problem ??= `event ${event.eventId} handled twice`
      else if (ctx.gap) s.problem ??= `gap: expected v${ctx.gap.expected}, got v${ctx.gap.got}`
      else if (event.version !== last + 1) s.problem ??= `v${event.version} after v${last}`
      s.versions.push(event.version)
      s.eventIds.add(event.eventId)
    },
  })
  let closed: Promise<void> | undefined

  const finalVersions = async (ids: readonly string[]): Promise<Map<string, number>> => {
    const pk = quoteIdent(rt.config.legacy.primaryKey)
    const out = new Map<string, number>()
    for (const p of rt.config.dimensions.user.shards) {
      for (let i = 0; i < ids.length; i += CHUNK) {
        const [rows] = await rt.host(p.host).query<RowDataPacket[]>(`SELECT ${pk} AS id, ${quoteIdent('version')} AS v FROM ${qualified(p.database, p.table)} WHERE ${pk} IN (?)`, [ids.slice(i, i + CHUNK)])
        for (const r of rows) out.set(String(r.id), Number(r.v))
      }
    }
    return out
  }

  return {
    async settle(ids, timeoutMs = 60_000) {
      const t0 = performance.now()
      const unique = [...new Set(ids)]
      const want = await finalVersions(unique)
      const complete = (id: string) => (byOrder.get(id)?.versions.length ?? 0) >= (want.get(id) ?? 0)
      let pending = unique.filter((id) => !complete(id))
      while (pending.length > 0 && performance.now() - t0 < timeoutMs) {
        await new Promise((r) => setTimeout(r, 200))
        pending = pending.filter((id) => !complete(id))
      }
      const drainMs = Math.round(performance.now() - t0)
      if (pending.length > 0) o.log(`  events: ${pending.length} orders still missing events after ${timeoutMs} ms`)
      const incomplete: string[] = []
      const disordered: string[] = []
      let good = 0
      for (const id of unique) {
        const s = byOrder.get(id)
        const final = want.get(id)
        const got = s?.versions ?? []
        if (final === undefined) disordered.push(`${id}: not in its user shard`)
        else if (s?.problem) disordered.push(`${id}: ${s.problem}`)
        else if (got.length < final) incomplete.push(`${id}: ${got.length}/${final}`)
        else if (got.length > final) disordered.push(`${id}: ${got.length} events for version ${final}`)
        else good++
      }
      const acknowledged = new Set(unique)
      let foreign = 0
      for (const [id, s] of byOrder) if (!acknowledged.has(id)) foreign += s.versions.length
      const consumer = group.counters
      // Arrival order, not only handling order: an event that had to wait means the relay reordered.
      if (consumer.waited > 0) disordered.push(`${consumer.waited} event(s) arrived before an earlier version of their order`)
      return { acknowledged: unique.length, exactlyOnceInOrder: good, incomplete: sample(incomplete), disordered: sample(disordered), handled, foreign, consumer, drainMs, ok: good === unique.length && consumer.waited === 0 && consumer.gaps === 0 }
    },
    close(deleteQueues) {
      closed ??= (async () => {
        await group.close()
        if (!deleteQueues) return
        const conn = openEventConnection(rt.config.events.url, { name: 'shardkit-demo cleanup' })
        try {
          for (const c of group.consumers) await conn.queueDelete({ queue: c.queue }).catch(() => undefined)
        } finally {
          await conn.close()
        }
      })()
      return closed
    },
  }
}

/** Holds a relay (run with `env`) at its next publish-before-mark point so it can be killed there. */
export interface RelayKillSwitch {
  /** Env for the relay process: the CLI's fault-hook socket (SHARDKIT_FAULT_HOOKS). */
  readonly env: NodeJS.ProcessEnv
  /** Resolves when the relay has published (confirmed) events and waits before marking them; null after `timeoutMs` without a publish. */
  arm(timeoutMs: number): Promise<{ outbox: string; count: number } | null>
  close(): Promise<void>
}

/**
 * Listens on `socketPath` for the relay's phase points and answers `continue`
 * to each until armed; once armed, the next `events.published-before-mark`
 * with events in it gets no answer: the relay stays there until killed.
 */
export async function startRelayKillSwitch(socketPath: string): Promise<RelayKillSwitch> {
  let armed: ((held: { outbox: string; count: number }) => void) | undefined
  const sockets = new Set<net.Socket>()
  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => undefined)
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('data', (chunk: string) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const msg = JSON.parse(buf.slice(0, nl)) as { point: string; details: { outbox?: string; count?: number } }
      if (armed && msg.point === 'events.published-before-mark' && (msg.details.count ?? 0) > 0) {
        armed({ outbox: String(msg.details.outbox), count: Number(msg.details.count) })
        armed = undefined
        return
      }
      sock.end('continue\n')
    })
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve))
  return {
    env: { ...process.env, SHARDKIT_FAULT_HOOKS: socketPath },
    arm(timeoutMs) {
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          armed = undefined
          resolve(null)
        }, timeoutMs)
        armed = (held) => {
          clearTimeout(t)
          resolve(held)
        }
      })
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
