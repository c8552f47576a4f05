/**
 * `npm run bench:events`: the order-event path on the local MariaDB and
 * RabbitMQ, in one run:
 *
 * 1. write cost: order create p50/p99 through the dual-write store with the
 *    outbox hook vs without, at `legacy` (primary only: the harshest ratio)
 *    and `dual-write`, modes interleaved (target: with-outbox p50 <= 1.2x);
 * 2. relay throughput: a pre-filled outbox drained by the relay (publish with
 *    confirms + mark) into a queue, beside a bare publish-with-confirms loop of
 *    the same client (rabbitmq-client, same window of messages in flight) into
 *    the same kind of queue (target: relay >= 50% of bare);
 * 3. end to end under live writes: events/s from store write to consumer and
 *    the p50/p99 delay from commit to consume.
 *
 * Queues are quorum queues declared as createOrderEventConsumer does (the
 * shape real consumers use). Creates `skb_events_*` databases, exchanges and
 * queues and removes them. Env: BENCH_MYSQL_URL, BENCH_AMQP_URL, BENCH_N
 * (creates per mode per round, default 300), BENCH_ROUNDS (3), BENCH_EVENTS
 * (events for the throughput part, default 5000), BENCH_CONCURRENCY (8).
 */
import { randomBytes } from 'node:crypto'
import type { RowDataPacket } from 'mysql2/promise'
import { Connection } from 'rabbitmq-client'
import { buildConfig } from '../src/config/init.js'
import { parseConfig } from '../src/config/schema.js'
import type { Stage, StageState } from '../src/cutover/stages.js'
import { DualWriteStore } from '../src/dualwrite/store.js'
import { primaryDatabases } from '../src/dualwrite/placement.js'
import { provision } from '../src/provision/index.js'
import { createMysqlPool, qualified, quoteIdent } from '../src/runtime/mysql.js'
import { openRuntime } from '../src/runtime/runtime.js'
import { createOutboxHook } from '../src/events/outbox.js'
import { OutboxRelay } from '../src/events/relay.js'
import { encodeEvent, type OrderEvent } from '../src/events/message.js'
import { newEventId } from '../src/events/event-id.js'
import { legacyOrdersDDL } from '../fixtures/legacy-schema.js'
import { benchOrderRows, percentile } from './support/order-rows.js'

const url = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
const amqpUrl = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const N = Number(process.env.BENCH_N ?? 300)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const EVENTS = Number(process.env.BENCH_EVENTS ?? 5000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const WINDOW = 500
const prefix = `skb_events_${randomBytes(3).toString('hex')}_`
const exchange = `${prefix}ex`
const queueArgs = { 'x-queue-type': 'quorum', 'x-max-length': 1_000_000, 'x-overflow': 'reject-publish' } as const

const row = benchOrderRows({ timeBase: 60_000_000, worker: 2 })

const pct = (xs: number[], p: number) => percentile([...xs].sort((a, b) => a - b), p)
const median = (xs: number[]) => pct(xs, 50)

/** A queue bound to every order event; resolves `until(n)` once n messages were consumed. Records receive times by event id. */
async function sink(conn: Connection, queue: string) {
  await conn.queueDeclare({ queue, durable: true, arguments: queueArgs })
  await conn.queueBind({ exchange, queue, routingKey: 'order.#' })
  const got = new Map<string, number>()
  let count = 0
  let want = Infinity
  let done: () => void = () => undefined
  const sub = conn.createConsumer({ queue, queueOptions: { durable: true, arguments: queueArgs }, qos: { prefetchCount: 1000 } }, (msg) => {
    const b = msg.body as { eventId?: string } | Buffer
    const id = Buffer.isBuffer(b) ? (JSON.parse(b.toString()) as { eventId: string }).eventId : b.eventId!
    if (!got.has(id)) got.set(id, performance.now())
    if (++count >= want) done()
  })
  sub.on('error', (err) => console.error(`bench consumer on ${queue}: ${(err as Error).message}`))
  return {
    got,
    reset() {
      got.clear()
      count = 0
    },
    until(n: number) {
      want = n
      return count >= n ? Promise.resolve() : new Promise<void>((r) => (done = r))
    },
    close: () => sub.close(),
  }
}

async function main(): Promise<void> {
  const raw = buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [url], databasesPerHost: 4, prefix, redisKeyPrefix: `${prefix}:` })
  const config = parseConfig({ ...raw, events: { url: amqpUrl, exchange, retentionMs: 3_600_000 } }, process.env)
  const admin = createMysqlPool(url, { connectionLimit: 4 })
  const rt = openRuntime(config, { connectionLimit: CONCURRENCY * 2 + 4 })
  const conn = new Connection({ url: amqpUrl, connectionName: 'shardkit bench:events' })
  conn.on('error', () => undefined)
  const queues: string[] = []
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(`${prefix}legacy`)}`)
    await admin.query(legacyOrdersDDL(`${prefix}legacy`, 'orders'))
    await provision(rt)
    for (const p of primaryDatabases(config)) {
      await admin.query(`INSERT INTO ${qualified(p.database, 'shardkit_fence')} (id, stage_version, state) VALUES (1, 1, 'open') ON DUPLICATE KEY UPDATE stage_version = 1, state = 'open'`)
    }
    const [[settings]] = (await admin.query<RowDataPacket[]>(
      'SELECT @@version AS version, @@innodb_buffer_pool_size AS bp, @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sync_binlog, @@log_bin AS log_bin',
    )) as unknown as [RowDataPacket[]]
    await conn.onConnect(10_000)
    await conn.exchangeDeclare({ exchange, type: 'topic', durable: true })

    // 1. write cost
    const stageOf = (stage: Stage): StageState => ({ stage, version: 1, readPercent: 0, changedAt: new Date().toISOString() })
    type Mode = `${'legacy' | 'dual-write'}/${'plain' | 'outbox' | 'noop'}`
    // `noop`: a hook that does nothing, to split the cost of calling a hook from the outbox's own INSERT.
    const MODES: Mode[] = ['legacy/plain', 'legacy/noop', 'legacy/outbox', 'dual-write/plain', 'dual-write/noop', 'dual-write/outbox']
    const stores = new Map<Mode, DualWriteStore>()
    const hook = createOutboxHook({ config: rt.config })
    for (const m of MODES) {
      const [stage, kind] = m.split('/') as [Stage, string]
      const st = stageOf(stage)
      stores.set(m, new DualWriteStore({ runtime: rt, stage: { current: () => st, ready: true }, ...(kind === 'outbox' ? { onPrimaryWrite: hook } : kind === 'noop' ? { onPrimaryWrite: async () => undefined } : {}) }))
    }
    for (const m of MODES) for (let i = 0; i < 50; i++) await stores.get(m)!.insert(row())
    const lat = new Map<Mode, number[]>(MODES.map((m) => [m, []]))
    // Modes alternate insert by insert, so drift in the shared machine's load hits every mode alike.
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < N; i++) {
        for (const m of MODES) {
          const t0 = performance.now()
          await stores.get(m)!.insert(row())
          lat.get(m)!.push(performance.now() - t0)
        }
      }
      for (const m of MODES) await stores.get(m)!.flush()
    }
    await admin.query(`DELETE FROM ${qualified(`${prefix}legacy`, 'shardkit_outbox')}`)

    // 2. relay throughput vs a bare publish-with-confirms loop
    const qBare = `${prefix}bare`
    const qRelay = `${prefix}relay`
    queues.push(qBare, qRelay)
    const bareSink = await sink(conn, qBare)
    const pub = conn.createPublisher({ confirm: true, maxAttempts: 1 })
    const bodies: OrderEvent[] = Array.from({ length: EVENTS }, (_, i) => ({ eventId: newEventId(), orderId: String(1_000_000 + i), userId: String(10_000 + (i % 5_000)), merchantId: '100', type: 'created', version: 1, occurredAt: new Date().toISOString() }))
    let next = 0
    const tb = performance.now()
    await Promise.all(
      Array.from({ length: WINDOW }, async () => {
        while (next < bodies.length) {
          const e = bodies[next++]!
          // the bare loop publishes straight to its queue (default exchange): no topic routing, no outbox, no mark
          await pub.send({ routingKey: qBare, mandatory: true, durable: true, messageId: e.eventId, contentType: 'application/json' }, encodeEvent(e))
        }
      }),
    )
    const bareRate = EVENTS / ((performance.now() - tb) / 1000)
    await bareSink.until(EVENTS)
    await bareSink.close()
    await conn.queueDelete({ queue: qBare })
    await pub.close()

    const relaySink = await sink(conn, qRelay)
    const plain = stores.get('legacy/outbox')!
    let left = EVENTS
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (left-- > 0) await plain.insert(row()) }))
    const relay = new OutboxRelay({ runtime: rt, batchSize: WINDOW, idleMs: 5, outboxes: ['legacy'] })
    const tr = performance.now()
    const drained = await relay.drain()
    const relayRate = drained[0]!.published / ((performance.now() - tr) / 1000)
    await relaySink.until(EVENTS)
    const relayE2eRate = EVENTS / ((performance.now() - tr) / 1000)
    await relay.stop()

    // 3. end to end under live writes (relay running)
    relaySink.reset()
    const live = new OutboxRelay({ runtime: rt, batchSize: WINDOW, idleMs: 2, outboxes: ['legacy'] })
    live.start()
    const committed = new Map<string, number>()
    const store = plain
    const LIVE = Math.min(EVENTS, 3000)
    let l2 = LIVE
    const te = performance.now()
    const ids: string[] = []
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (l2-- > 0) {
          const r = row()
          await store.insert(r)
          committed.set(String(r.order_id), performance.now())
          ids.push(String(r.order_id))
        }
      }),
    )
    await relaySink.until(LIVE)
    const e2eRate = LIVE / ((performance.now() - te) / 1000)
    await live.stop()
    // receive times are by event id; map them to orders through the outbox
    const [rows] = await admin.query<RowDataPacket[]>(`SELECT event_id, order_id FROM ${qualified(`${prefix}legacy`, 'shardkit_outbox')} WHERE order_id IN (?)`, [ids])
    const delays: number[] = []
    for (const r of rows) {
      const at = relaySink.got.get(String(r.event_id))
      const c = committed.get(String(r.order_id))
      if (at !== undefined && c !== undefined) delays.push(at - c)
    }
    await relaySink.close()

    console.log(`order events: outbox write cost, relay throughput, end to end; ${ROUNDS} rounds x ${N} sequential creates per mode (modes alternating insert by insert), ${EVENTS} events for throughput, ${CONCURRENCY} writers`)
    console.log(
      `server: MariaDB ${settings!.version}, innodb_buffer_pool_size ${Math.round(Number(settings!.bp) / 2 ** 20)} MiB, innodb_flush_log_at_trx_commit ${settings!.flush}, log_bin ${settings!.log_bin}, sync_binlog ${settings!.sync_binlog}; RabbitMQ local, quorum queues, client rabbitmq-client 5, ${WINDOW} publishes in flight`,
    )
    console.log('')
    console.log('| order create | p50 ms | p99 ms | p50 with outbox / without |')
    console.log('|---|---:|---:|---:|')
    for (const m of MODES) {
      const base = lat.get(`${m.split('/')[0]}/plain` as Mode)!
      const label = m.endsWith('outbox') ? 'with outbox' : m.endsWith('noop') ? 'with a no-op hook' : 'without events'
      console.log(`| store @ ${m.split('/')[0]} ${label} | ${pct(lat.get(m)!, 50).toFixed(2)} | ${pct(lat.get(m)!, 99).toFixed(2)} | ${m.endsWith('plain') ? '' : `${(median(lat.get(m)!) / median(base)).toFixed(2)}x`} |`)
    }
    console.log('')
    console.log('| publish path | events/s | / bare |')
    console.log('|---|---:|---:|')
    console.log(`| bare publish-with-confirms loop (rabbitmq-client, ${WINDOW} in flight) | ${Math.round(bareRate)} | 1.00x |`)
    console.log(`| relay: read outbox, publish with confirms + mandatory, mark | ${Math.round(relayRate)} | ${(relayRate / bareRate).toFixed(2)}x |`)
    console.log(`| relay drain to consumer (until the last event consumed) | ${Math.round(relayE2eRate)} | ${(relayE2eRate / bareRate).toFixed(2)}x |`)
    console.log('')
    console.log(`end to end under live writes (${LIVE} creates, ${CONCURRENCY} writers, relay running): ${Math.round(e2eRate)} events/s write -> consume; commit -> consume delay p50 ${pct(delays, 50).toFixed(1)} ms, p99 ${pct(delays, 99).toFixed(1)} ms (${delays.length} events)`)
    const wr = median(lat.get('legacy/outbox')!) / median(lat.get('legacy/plain')!)
    const wd = median(lat.get('dual-write/outbox')!) / median(lat.get('dual-write/plain')!)
    console.log(`write cost: with outbox / without p50 = ${wr.toFixed(2)}x at legacy, ${wd.toFixed(2)}x at dual-write (target <= 1.2x): ${wr <= 1.2 && wd <= 1.2 ? 'met' : wd <= 1.2 ? 'met at dual-write, NOT at legacy' : 'NOT met'}`)
    console.log(`relay / bare publish = ${(relayRate / bareRate).toFixed(2)}x (target >= 0.5x): ${relayRate / bareRate >= 0.5 ? 'met' : 'NOT met'}`)
  } finally {
    for (const queue of queues) await conn.queueDelete({ queue }).catch(() => undefined)
    await conn.exchangeDelete({ exchange }).catch(() => undefined)
    await conn.close()
    await rt.close()
    const [dbs] = await admin.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
    for (const d of dbs) await admin.query(`DROP DATABASE ${quoteIdent(String(d.n))}`)
    await admin.end()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
