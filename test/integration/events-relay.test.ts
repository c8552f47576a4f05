/**
 * The outbox relay on the real MariaDB and RabbitMQ: publish with confirms
 * and mark after the confirm; a relay stopped between publish and mark sends
 * again (duplicate, never a skip); two relays on one outbox (one holds; a
 * stale holder cannot mark once another took over; no reorder); the broker cut
 * mid-traffic (writes go on, none lost); an unroutable event and a nacked one
 * (queue at its cap) are never marked. Each test uses its own exchange and
 * queues, deleted after.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { main } from '../../src/cli/main.js'
import { HookServer } from '../faults/support/hook-server.js'
import { startService } from '../../examples/demo/processes.js'
import { parseConfig } from '../../src/config/schema.js'
import type { CliIO } from '../../src/cli/io.js'
import { silentLogger } from '../../src/runtime/logger.js'
import type { RowDataPacket } from 'mysql2/promise'
import { Connection } from 'rabbitmq-client'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { setPhaseHandler } from '../../src/runtime/phase-hooks.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { legacyLocation } from '../../src/dualwrite/placement.js'
import { createOutboxHook, OUTBOX_TABLE } from '../../src/events/outbox.js'
import { OutboxRelay } from '../../src/events/relay.js'
import { RETRY_TABLE } from '../../src/events/outbox-retry.js'
import { readEventsStatus } from '../../src/events/status.js'
import { readRelayLeases } from '../../src/events/relay-lease.js'
import { buildConfig } from '../../src/config/init.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'
import { startTcpProxy } from '../support/tcp-proxy.js'
import { collect, deleteTopology, firstArrivals, misordered, testAmqpUrl, withEvents } from '../support/events.js'
import { FixedStage, hostPools, newOrderId, orderRow } from './dualwrite-support.js'

const prefix = testPrefix('evrelay')
const base = testFleetConfig({ prefix })
const pools = hostPools(base)
let rt: Runtime
let stage: FixedStage
let store: DualWriteStore
let amqp: Connection
let n = 0
const topology: { queues: string[]; exchanges: string[] } = { queues: [], exchanges: [] }
const relays: OutboxRelay[] = []
const runtimes: Runtime[] = []

/** A fresh exchange and a runtime whose config points at it (and at `url`). */
/** The broker's URL with its address replaced by the test proxy's. */
function throughProxy(port: number): string {
  const u = new URL(testAmqpUrl())
  u.host = `127.0.0.1:${port}`
  return u.toString()
}

function scenario(url = testAmqpUrl()) {
  const id = ++n
  const exchange = `${prefix}ex${id}`
  const queue = `${prefix}q${id}`
  topology.exchanges.push(exchange)
  topology.queues.push(queue)
  const r = openRuntime(withEvents(base, exchange, url))
  runtimes.push(r)
  return { exchange, queue, rt: r }
}

function relay(r: Runtime, opts: Partial<ConstructorParameters<typeof OutboxRelay>[0]> = {}): OutboxRelay {
  const x = new OutboxRelay({ runtime: r, outboxes: ['legacy'], idleMs: 10, ...opts })
  relays.push(x)
  return x
}

/**
 * Holds relay `holder` at phase point `point` (where `when` holds) until `release()`;
 * `at` resolves once it is held there. Cleared by the afterEach.
 */
function stallAt(point: string, holder: string, when: (d: Record<string, unknown>) => boolean = () => true): { at: Promise<void>; release: () => void } {
  let release!: () => void
  const stalled = new Promise<void>((resolve) => (release = resolve))
  let reached!: () => void
  const at = new Promise<void>((resolve) => (reached = resolve))
  setPhaseHandler(async (p, d) => {
    if (p === point && d.holder === holder && when(d)) {
      reached()
      await stalled
    }
  })
  return { at, release }
}

/** Writes `orders` orders with `changes` status changes each; returns order id -> last version. */
async function write(orders: number, changes: number, user = 3000): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  const statuses = ['paid', 'accepted', 'delivering', 'completed'] as const
  await Promise.all(
    Array.from({ length: orders }, async (_, i) => {
      const u = String(user + i)
      const id = newOrderId(u)
      await store.insert(orderRow(id, u, '700'), { event: { type: 'created' } })
      for (let c = 0; c < changes; c++) await store.update(id, { status: statuses[c]! }, { event: { type: statuses[c]! } })
      out.set(id, changes + 1)
    }),
  )
  return out
}

async function unpublished(): Promise<number> {
  const l = legacyLocation(base)
  const [rows] = await pools.get('legacy').query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(l.database, OUTBOX_TABLE)} WHERE published_at IS NULL`)
  return Number(rows[0]!.n)
}

async function clearOutbox(): Promise<void> {
  const l = legacyLocation(base)
  await pools.get('legacy').query(`DELETE FROM ${qualified(l.database, OUTBOX_TABLE)}`)
  await pools.get('legacy').query(`DELETE FROM ${qualified(l.database, RETRY_TABLE)}`)
}

async function owed(): Promise<number> {
  const l = legacyLocation(base)
  const [rows] = await pools.get('legacy').query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(l.database, RETRY_TABLE)}`)
  return Number(rows[0]!.n)
}

beforeAll(async () => {
  await createLegacyTable(base)
  rt = openRuntime(base)
  await provision(rt)
  stage = new FixedStage(base, pools.get, rt)
  await stage.set('legacy')
  store = new DualWriteStore({ runtime: rt, stage, onPrimaryWrite: createOutboxHook() })
  amqp = new Connection({ url: testAmqpUrl(), connectionName: `${prefix} test` })
  amqp.on('error', () => undefined)
  await amqp.onConnect(10_000)
})
afterEach(async () => {
  setPhaseHandler(undefined)
  await Promise.all(relays.splice(0).map((r) => r.stop()))
  await clearOutbox()
})
afterAll(async () => {
  await deleteTopology(amqp, topology)
  await amqp?.close()
  await Promise.all(runtimes.map((r) => r.close()))
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('events relay', () => {
  it('publishes in order with confirms, then marks rows published; status shows the drained outbox', async () => {
    const s = scenario()
    const c = await collect(amqp, s.exchange, s.queue)
    const expected = await write(8, 3)
    expect(await unpublished()).toBe(32)
    const st0 = await readEventsStatus(s.rt, { queues: [s.queue] })
    expect(st0.outboxes.find((o) => o.primary === 'legacy')!.depth).toBe(32)
    const r = await relay(s.rt, { batchSize: 7 }).drain()
    expect(r).toEqual([{ outbox: 'legacy', held: true, published: 32, unroutable: 0, failed: 0, blocked: false, owed: 0, retried: 0, pruned: 0 }])
    await c.waitFor(32)
    const { byOrder, duplicates } = firstArrivals(c.events)
    expect(duplicates).toBe(0)
    expect(misordered(byOrder, expected)).toEqual([])
    expect(await unpublished()).toBe(0)
    const st = await readEventsStatus(s.rt, { queues: [s.queue] })
    const lg = st.outboxes.find((o) => o.primary === 'legacy')!
    expect(lg).toMatchObject({ depth: 0, oldestAgeMs: null, publishedLastMinute: 32 })
    expect(lg.relay).toMatchObject({ holder: '' }) // drain gave the lease back
    expect(st.queues[0]).toMatchObject({ queue: s.queue, cap: 10_000 })
    await c.close()
  })

  it('a relay stopped after publish, before mark, sends those events again: duplicates, never a skip', async () => {
    const s = scenario()
    const c = await collect(amqp, s.exchange, s.queue)
    const expected = await write(5, 2)
    let killed = 0
    setPhaseHandler((point) => {
      if (point === 'events.published-before-mark' && killed === 0) {
        killed++
        throw new Error('relay killed before mark')
      }
    })
    await expect(relay(s.rt, { batchSize: 100 }).drain()).rejects.toThrow('relay killed before mark')
    await c.waitFor(15)
    expect(await unpublished()).toBe(15) // published, never marked
    setPhaseHandler(undefined)
    const r = await relay(s.rt).drain()
    expect(r[0]).toMatchObject({ published: 15, blocked: false })
    await c.waitFor(30)
    const { byOrder, duplicates } = firstArrivals(c.events)
    expect(duplicates).toBe(15)
    expect(misordered(byOrder, expected)).toEqual([])
    await c.close()
  })

  it('two relays: one holds; a stalled holder loses the lease, cannot mark, and the other publishes in order', async () => {
    const s = scenario()
    const c = await collect(amqp, s.exchange, s.queue)
    const a = relay(s.rt, { holder: 'relay-a', leaseTtlMs: 600 })
    // a GC pause / partition between publish and mark
    const { at: aAt, release: releaseA } = stallAt('events.published-before-mark', 'relay-a', (d) => Number(d.count) > 0)
    a.start()
    await new Promise((r) => setTimeout(r, 100))
    const b = relay(s.rt, { holder: 'relay-b', leaseTtlMs: 600 })
    b.start()
    const expected = await write(6, 3)
    await aAt
    // while a is stalled its lease expires and b takes over with a higher token
    await c.waitFor(24 + 1)
    await waitUntil(async () => (await unpublished()) === 0, 15_000)
    const leases = await readRelayLeases(s.rt)
    expect(leases.find((l) => l.outbox === 'legacy')).toMatchObject({ holder: 'relay-b' })
    releaseA()
    await waitUntil(async () => !a.stats()[0]!.holding, 5_000)
    expect(a.stats()[0]!.published).toBe(0) // its mark was refused by the token
    expect(b.stats()[0]!.published).toBe(24)
    const { byOrder } = firstArrivals(c.events)
    expect(misordered(byOrder, expected)).toEqual([])
    await c.close()
  })

  it('a holder paused after reading its batch, past its lease, publishes nothing when it wakes: the new holder sent each event once', async () => {
    const s = scenario()
    const c = await collect(amqp, s.exchange, s.queue)
    const a = relay(s.rt, { holder: 'relay-late', leaseTtlMs: 600 })
    // a GC pause or a SIGSTOP between reading the batch and sending it
    const { at: aAt, release: releaseA } = stallAt('events.before-publish', 'relay-late')
    a.start()
    const expected = await write(5, 2, 3800) // 15 events
    await aAt
    const b = relay(s.rt, { holder: 'relay-new', leaseTtlMs: 600 })
    b.start()
    await c.waitFor(15)
    await waitUntil(async () => (await unpublished()) === 0, 15_000)
    expect((await readRelayLeases(s.rt)).find((l) => l.outbox === 'legacy')).toMatchObject({ holder: 'relay-new' })
    releaseA()
    await waitUntil(async () => !a.stats()[0]!.holding, 5_000)
    await new Promise((r) => setTimeout(r, 500)) // room for a late publish to arrive, were there one
    const { byOrder, duplicates } = firstArrivals(c.events)
    expect(duplicates, 'the woken holder published its stale batch').toBe(0)
    expect(c.events).toHaveLength(15)
    expect(misordered(byOrder, expected)).toEqual([])
    expect(a.stats()[0]!.published).toBe(0)
    await c.close()
  })

  it('broker cut mid-traffic: writes succeed, the outbox grows, the relay reconnects and drains, none lost', async () => {
    const proxy = await startTcpProxy({ targetPort: Number(new URL(testAmqpUrl()).port || 5672) })
    try {
      const s = scenario(throughProxy(proxy.port))
      const c = await collect(amqp, s.exchange, s.queue)
      const r = relay(s.rt, { maxBackoffMs: 300, confirmTimeoutMs: 3_000 })
      r.start()
      const first = await write(4, 1, 3100)
      await c.waitFor(8)
      proxy.cut()
      const during = await write(10, 2, 3200) // writes keep succeeding while the broker is unreachable
      await new Promise((res) => setTimeout(res, 500))
      expect(await unpublished()).toBeGreaterThan(0)
      proxy.restore()
      await c.waitFor(8 + 30, 30_000)
      await waitUntil(async () => (await unpublished()) === 0, 15_000)
      const expected = new Map([...first, ...during])
      expect(misordered(firstArrivals(c.events).byOrder, expected)).toEqual([])
      await c.close()
    } finally {
      await proxy.close()
    }
  })

  it('a half-open broker connection (blackholed) is detected by heartbeats within seconds; the relay reconnects and drains', async () => {
    const proxy = await startTcpProxy({ targetPort: Number(new URL(testAmqpUrl()).port || 5672) })
    try {
      const s = scenario(throughProxy(proxy.port))
      const c = await collect(amqp, s.exchange, s.queue)
      // confirm timeout far above the heartbeat: only the heartbeat can notice the dead peer in time
      const r = relay(s.rt, { maxBackoffMs: 300, confirmTimeoutMs: 120_000 })
      r.start()
      const first = await write(2, 1, 3150)
      await c.waitFor(4)
      proxy.blackhole()
      const t0 = Date.now()
      const during = await write(3, 1, 3160)
      // The lease deadline gives up on the unconfirmed publishes first (CONFIRM_TIMEOUT, ~9 s); the
      // heartbeat then declares the connection dead. Keep the blackhole until it has: restored earlier,
      // the connection would carry traffic again and the heartbeat would have nothing to notice.
      const transient = new Set([null, 'CONFIRM_TIMEOUT', 'LEASE_DEADLINE'])
      await waitUntil(async () => !transient.has(r.stats()[0]!.lastError), 20_000)
      const detectedMs = Date.now() - t0
      expect(detectedMs).toBeLessThan(15_000)
      proxy.restore()
      await c.waitFor(4 + 6, 30_000)
      await waitUntil(async () => (await unpublished()) === 0, 15_000)
      expect(misordered(firstArrivals(c.events).byOrder, new Map([...first, ...during]))).toEqual([])
      await c.close()
    } finally {
      await proxy.close()
    }
  }, 60_000)

  it('the holder prunes published rows once they are older than the retention', async () => {
    const s = scenario()
    const c = await collect(amqp, s.exchange, s.queue)
    await write(3, 1, 3700)
    const l = legacyLocation(base)
    const count = async () => Number((await pools.get('legacy').query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(l.database, OUTBOX_TABLE)}`))[0][0]!.n)
    expect(await count()).toBe(6)
    const r = relay(s.rt, { retentionMs: 300, pruneEveryMs: 50 })
    r.start()
    await c.waitFor(6)
    await waitUntil(async () => (await count()) === 0, 10_000)
    expect(r.stats()[0]!.published).toBe(6)
    await c.close()
  })

  it('an unroutable event is returned, held for the exchange (the outbox head moves on), and goes out once a queue is bound', async () => {
    const s = scenario()
    await amqp.exchangeDeclare({ exchange: s.exchange, type: 'topic', durable: true })
    const expected = await write(3, 1, 3300)
    const r1 = await relay(s.rt).drain()
    expect(r1[0]).toMatchObject({ owed: 6, retried: 0, blocked: true })
    expect(r1[0]!.unroutable).toBeGreaterThan(0)
    expect(await unpublished()).toBe(0) // handed off: nothing waits behind them
    expect(await owed()).toBe(6)
    const st = await readEventsStatus(s.rt)
    expect(st.outboxes.find((o) => o.primary === 'legacy')).toMatchObject({ depth: 0, held: 6, heldTargets: [expect.objectContaining({ target: '', count: 6 })] })
    expect(st.totalHeld).toBe(6)
    const c = await collect(amqp, s.exchange, s.queue)
    const r2 = await relay(s.rt).drain()
    expect(r2[0]).toMatchObject({ published: 0, retried: 6, owed: 0, unroutable: 0, blocked: false })
    await c.waitFor(6)
    expect(misordered(firstArrivals(c.events).byOrder, expected)).toEqual([])
    await c.close()
  })

  it('a queue at its cap (reject-publish) nacks: the relay holds those events for it and sends them once there is room', async () => {
    const s = scenario()
    await amqp.exchangeDeclare({ exchange: s.exchange, type: 'topic', durable: true })
    await amqp.queueDeclare({ queue: s.queue, durable: true, arguments: { 'x-max-length': 5, 'x-overflow': 'reject-publish' } })
    await amqp.queueBind({ exchange: s.exchange, queue: s.queue, routingKey: 'order.#' })
    const expected = await write(4, 2, 3400) // 12 events, room for 5
    const r1 = await relay(s.rt).drain()
    expect(r1[0]!.failed).toBeGreaterThan(0)
    expect(r1[0]).toMatchObject({ published: 12, owed: 7, blocked: true })
    expect(await unpublished()).toBe(0)
    expect(await owed()).toBe(7)
    const st = await readEventsStatus(s.rt, { queues: [s.queue], cap: 5 })
    expect(st.queues[0]).toMatchObject({ messages: 5, fill: 1 })
    // a consumer takes what is there, then the relay delivers the rest
    const got: string[] = []
    const take = async () => {
      for (;;) {
        const m = await amqp.basicGet({ queue: s.queue, noAck: true })
        if (!m) return
        got.push(JSON.stringify(m.body))
      }
    }
    for (let i = 0; i < 5 && (await owed()) > 0; i++) {
      await take()
      await relay(s.rt).drain()
    }
    await take()
    expect(await owed()).toBe(0)
    const events = got.map((b) => JSON.parse(b) as { eventId: string; orderId: string; version: number })
    expect(events).toHaveLength(12)
    expect(misordered(firstArrivals(events as never).byOrder, expected)).toEqual([])
  })
})

describe('shardctl events', () => {
  it('status prints depth per outbox; relay --once publishes and exits 0; status --json shows the queue', async () => {
    const s = scenario()
    const c = await collect(amqp, s.exchange, s.queue)
    await write(2, 1, 3500)
    const dir = mkdtempSync(join(tmpdir(), 'shardkit-evcli-'))
    try {
      const configPath = join(dir, 'shardkit.json')
      writeCliConfig(configPath, s.exchange)
      const run = async (...args: string[]) => {
        const stdout = new PassThrough()
        const stderr = new PassThrough()
        let out = ''
        let errOut = ''
        stdout.on('data', (d) => (out += String(d)))
        stderr.on("data", (d) => (errOut += String(d)))
        const io: CliIO = { stdout, stderr, env: {}, cwd: dir, logger: silentLogger, isTTY: false }
        const code = await main(['node', 'shardctl', '-c', configPath, ...args], io)
        if (code !== 0) console.error(errOut)
        return { code, out }
      }
      const st = await run('events', 'status')
      expect(st.code).toBe(0)
      expect(st.out).toMatch(/^legacy\s+legacy\s+4\s/m)
      expect(st.out).toContain('total depth 4')
      const r = await run('events', 'relay', '--once', '--batch', '3', '--outbox', 'legacy', '--json')
      expect(r.code).toBe(0)
      expect(JSON.parse(r.out).outboxes[0]).toMatchObject({ outbox: 'legacy', published: 4, blocked: false })
      await c.waitFor(4)
      const js = await run('events', 'status', '--json', '--queue', s.queue, '--queue', `${prefix}missing`)
      expect(js.code).toBe(0)
      const j = JSON.parse(js.out)
      expect(j.totalDepth).toBe(0)
      expect(j.queues).toEqual([
        expect.objectContaining({ queue: s.queue, cap: 10_000, consumers: 1 }),
        expect.objectContaining({ queue: `${prefix}missing`, messages: null, error: 'NOT_FOUND' }),
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await c.close()
    }
  })
})

/** The same fleet as testFleetConfig builds, as a config file, with this test's exchange. */
function writeCliConfig(path: string, exchange: string): void {
  const raw = buildConfig({ legacyUrl: testMysqlUrl(), legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [testMysqlUrl()], databasesPerHost: 2, redisUrl: testRedisUrl(), prefix, redisKeyPrefix: `${prefix.replace(/_$/, '')}:` })
  writeFileSync(path, JSON.stringify({ ...raw, events: { url: testAmqpUrl(), exchange, retentionMs: 3_600_000 } }))
}

describe('shardctl events relay as a process', () => {
  it('SIGKILL after publish, before mark: a standby takes over once the lease expires and sends those events again', async () => {
    const s = scenario()
    const c = await collect(amqp, s.exchange, s.queue)
    const expected = await write(4, 2, 3600)
    const dir = mkdtempSync(join(tmpdir(), 'shardkit-evkill-'))
    const hooks = await HookServer.listen()
    try {
      const configPath = join(dir, 'shardkit.json')
      writeCliConfig(configPath, s.exchange)
      hooks.hold('events.published-before-mark', (d) => Number(d.count) > 0)
      const root = fileURLToPath(new URL('../..', import.meta.url))
      const child = spawn(process.execPath, ['--import', 'tsx', 'bin/shardctl.ts', '-c', configPath, 'events', 'relay', '--outbox', 'legacy', '--lease-ttl', '1000'], {
        cwd: root,
        env: { ...process.env, SHARDKIT_FAULT_HOOKS: hooks.path!, SHARDKIT_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      let stderr = ''
      child.stderr!.on('data', (d) => (stderr += String(d)))
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)))
      const at = await hooks.waitFor('events.published-before-mark', { timeoutMs: 30_000 }).catch((err: Error) => {
        throw new Error(`${err.message}; child stderr: ${stderr}`)
      })
      await c.waitFor(12) // the broker confirmed them: they are in the queue
      process.kill(at.pid, 'SIGKILL')
      expect(await exited).toBe('SIGKILL')
      expect(await unpublished()).toBe(12)
      const standby = relay(s.rt, { holder: 'standby', leaseTtlMs: 1000 })
      const t0 = Date.now()
      standby.start()
      await waitUntil(async () => (await unpublished()) === 0, 15_000)
      expect(Date.now() - t0).toBeLessThan(10_000)
      await c.waitFor(24)
      const { byOrder, duplicates } = firstArrivals(c.events)
      expect(duplicates).toBe(12)
      expect(misordered(byOrder, expected)).toEqual([])
    } finally {
      await hooks.close()
      rmSync(dir, { recursive: true, force: true })
      await c.close()
    }
  }, 60_000)
})

describe('the order service with --events relay', () => {
  it('publishes its orders\' events from inside the service process', async () => {
    const svcPrefix = testPrefix('evsvc')
    const exchange = `${svcPrefix}ex`
    const queue = `${svcPrefix}q`
    topology.exchanges.push(exchange)
    topology.queues.push(queue)
    const dir = mkdtempSync(join(tmpdir(), 'shardkit-evsvc-'))
    const raw = {
      ...buildConfig({ legacyUrl: testMysqlUrl(), legacyDatabase: `${svcPrefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [testMysqlUrl()], prefix: svcPrefix, redisUrl: testRedisUrl(), redisKeyPrefix: `${svcPrefix.replace(/_$/, '')}:` }),
      events: { url: testAmqpUrl(), exchange, retentionMs: 3_600_000 },
    }
    const config = parseConfig(raw, {})
    let svc: Awaited<ReturnType<typeof startService>> | undefined
    const c = await collect(amqp, exchange, queue)
    try {
      await createLegacyTable(config)
      const prt = openRuntime(config)
      runtimes.push(prt)
      await provision(prt)
      const configPath = join(dir, 'shardkit.json')
      writeFileSync(configPath, JSON.stringify(raw))
      svc = await startService(configPath, `${svcPrefix}svc`, join(dir, 'svc.log'), 60_000, ['--events', 'relay'])
      const res = await fetch(`${svc.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: '123457', merchant_id: '9', total_cents: 500, items: [{ sku: 'X', qty: 1, price_cents: 500 }] }) })
      expect(res.status).toBe(201)
      const order = (await res.json()) as { order_id: string }
      const paid = await fetch(`${svc.url}/orders/${order.order_id}/status`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 'paid' }) })
      expect(paid.status).toBe(200)
      await c.waitFor(2, 20_000)
      expect(c.events.map((e) => [e.orderId, e.type, e.version])).toEqual([
        [order.order_id, 'created', 1],
        [order.order_id, 'paid', 2],
      ])
      expect(await svc.stop()).toBe(0)
      svc = undefined
    } finally {
      await svc?.stop()
      await c.close()
      await dropPrefixedDatabases(svcPrefix)
      rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)
})

async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 50))
  }
}
