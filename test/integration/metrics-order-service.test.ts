/**
 * `/metrics` of the reference order service during a test migration (legacy
 * -> dual-write), parsed with a Prometheus text-format parser: dual-write
 * latency per stage and side, secondary failures by reason, journal appends
 * and depth, fence refusals, the applied stage version and heartbeat age,
 * and the relay's counters, each with a value the test can account for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { Connection } from 'rabbitmq-client'
import { buildApp } from '../../examples/order-service/app.js'
import { DualWriteStore, ShardkitMetrics, StageWatcher, openRuntime, type Runtime } from '../../src/index.js'
import { createOutboxHook } from '../../src/events/outbox.js'
import { OutboxRelay } from '../../src/events/relay.js'
import type { StageState } from '../../src/cutover/stages.js'
import { collect, deleteTopology, testAmqpUrl, withEvents } from '../support/events.js'
import { setupFleet, until, walkTo, type Fleet } from './cutover-support.js'
import { newOrderId } from './dualwrite-support.js'
import { histogramSample, parseMetrics, sampleValue } from './operator-support.js'

let fleet: Fleet
let rt: Runtime
let watcher: StageWatcher
let metrics: ShardkitMetrics
let app: FastifyInstance
let relay: OutboxRelay
let amqp: Connection
let collector: Awaited<ReturnType<typeof collect>>
const exchange = `skt.metrics.${Math.random().toString(16).slice(2, 8)}`
const queue = `${exchange}.all`

beforeAll(async () => {
  fleet = await setupFleet('metricsvc')
  rt = openRuntime(withEvents(fleet.config, exchange))
  amqp = new Connection(testAmqpUrl())
  collector = await collect(amqp, exchange, queue)
  metrics = new ShardkitMetrics()
  metrics.trackJournalDepth(rt)
  watcher = new StageWatcher(rt, { instanceId: 'metrics-svc', metrics, heartbeatMs: 200 })
  await watcher.start()
  const store = new DualWriteStore({ runtime: rt, stage: watcher, metrics, onPrimaryWrite: createOutboxHook() })
  relay = new OutboxRelay({ runtime: rt, outboxes: ['legacy'], idleMs: 10 })
  metrics.bindRelay(relay)
  relay.start()
  app = await buildApp({ store, stage: watcher, ids: { next: (u) => newOrderId(u) }, metrics: metrics.registry })
})
afterAll(async () => {
  await app?.close()
  await relay?.stop()
  await watcher?.close()
  await collector?.close()
  await deleteTopology(amqp, { queues: [queue], exchanges: [exchange] }).catch(() => undefined)
  await amqp?.close()
  await rt?.close()
  await fleet?.cleanup()
})

let text = ''
async function scrape() {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  expect(res.statusCode).toBe(200)
  expect(res.headers['content-type']).toContain('text/plain')
  text = res.body
  return parseMetrics(res.body)
}
const histCount = (labels: Record<string, string>) => histogramSample(text, 'shardkit_dualwrite_write_seconds', 'count', labels)

const create = async (userId: string) => {
  const res = await app.inject({ method: 'POST', url: '/orders', payload: { user_id: userId, merchant_id: '77', total_cents: 100, items: [{ sku: 'A', name: 'a', qty: 1, price_cents: 100 }] } })
  expect(res.statusCode, res.body).toBe(201)
}

describe('order service /metrics through a test migration', () => {
  it('carries the dual-write, journal, fence, stage, heartbeat and relay series with values that add up', async () => {
    await until(() => watcher.ready, 5_000, 'the watcher')
    for (let i = 0; i < 4; i++) await create(String(500 + i))
    let m = await scrape()
    expect(sampleValue(m, 'shardkit_stage_version')).toBe(0)
    expect(histCount({ stage: 'legacy', side: 'primary', outcome: 'ok' })).toBe(4)
    expect(sampleValue(m, 'shardkit_dualwrite_writes_total', { stage: 'legacy', primary: 'legacy', op: 'insert', outcome: 'ok' })).toBe(4)
    expect(sampleValue(m, 'shardkit_journal_appends_total')).toBe(0)
    expect(m.get('shardkit_dualwrite_write_seconds')!.type).toBe('HISTOGRAM')

    // The migration moves on: the watcher applies dual-write; writes now journal and copy to both dimensions.
    const s = await walkTo(fleet.rt, 'dual-write')
    await until(() => watcher.current()?.version === s.version, 5_000, 'the watcher to apply dual-write')
    for (let i = 0; i < 6; i++) await create(String(600 + i))
    m = await scrape()
    expect(sampleValue(m, 'shardkit_stage_version')).toBe(s.version)
    expect(sampleValue(m, 'shardkit_stage_info', { stage: 'dual-write' })).toBe(1)
    expect(histCount({ stage: 'dual-write', side: 'primary', outcome: 'ok' })).toBe(6)
    expect(histCount({ stage: 'dual-write', side: 'secondaries', outcome: 'ok' })).toBe(6)
    expect(sampleValue(m, 'shardkit_journal_appends_total')).toBe(6)
    const sum = histogramSample(text, 'shardkit_dualwrite_write_seconds', 'sum', { stage: 'dual-write', side: 'primary', outcome: 'ok' })!
    expect(sum).toBeGreaterThan(0)
    expect(sum).toBeLessThan(60)
    const age = sampleValue(m, 'shardkit_heartbeat_age_seconds')!
    expect(age).toBeGreaterThanOrEqual(0)
    expect(age).toBeLessThan(2)
    // Completed writes' journal rows are deleted in batches a few ms later.
    await until(async () => sampleValue(await scrape(), 'shardkit_journal_depth', { primary: 'legacy' }) === 0, 5_000, 'the journal to clear')

    // A write planned at an old stage version is refused by the database fence, and counted.
    const old: StageState = { stage: 'legacy', version: 0, readPercent: 0, changedAt: new Date(0).toISOString() }
    const stale = new DualWriteStore({ runtime: rt, stage: { current: () => old, ready: true }, metrics })
    await expect(stale.insert({ order_id: newOrderId('700'), user_id: '700', merchant_id: '7', status: 'created', total_cents: 1, currency: 'CNY', items: '[]' })).rejects.toMatchObject({ code: 'FENCE_REJECTED' })
    // A secondary that cannot answer in time is journaled, counted by reason, and shows in the journal depth.
    const slow = new DualWriteStore({ runtime: rt, stage: watcher, metrics, secondaryTimeoutMs: 1 })
    for (let i = 0; i < 20; i++) await slow.insert({ order_id: newOrderId(String(800 + i)), user_id: String(800 + i), merchant_id: '7', status: 'created', total_cents: 1, currency: 'CNY', items: '[]' })
    m = await scrape()
    expect(sampleValue(m, 'shardkit_fence_refusals_total')).toBe(1)
    expect(sampleValue(m, 'shardkit_dualwrite_writes_total', { stage: 'legacy', op: 'insert', outcome: 'fenced' })).toBe(1)
    const failures = m.get('shardkit_dualwrite_secondary_failures_total')!.metrics.reduce((n, x) => n + Number(x.value), 0)
    expect(failures).toBeGreaterThan(0)
    expect(m.get('shardkit_dualwrite_secondary_failures_total')!.metrics.map((x) => x.labels?.reason)).toContain('SHARD_TIMEOUT')
    // Each failed write keeps its journal row (nothing drains here); a write counts once per distinct reason.
    const depth = sampleValue(m, 'shardkit_journal_depth', { primary: 'legacy' })!
    expect(depth).toBeGreaterThan(0)
    expect(depth).toBeLessThanOrEqual(20)
    expect(sampleValue(m, 'shardkit_dualwrite_secondary_failures_total', { reason: 'SHARD_TIMEOUT' })).toBeLessThanOrEqual(20)
    expect(histCount({ stage: 'dual-write', side: 'secondaries', outcome: 'journaled' })).toBe(depth)
    expect(sampleValue(m, 'shardkit_journal_oldest_age_seconds', { primary: 'legacy' })).toBeGreaterThanOrEqual(0)

    // The relay published every order event of the service's store (4 + 6 inserts; the extra stores write no events).
    await collector.waitFor(10)
    await until(async () => sampleValue(await scrape(), 'shardkit_relay_published_total', { outbox: 'legacy' }) === 10, 10_000, 'the relay counter')
    m = await scrape()
    expect(sampleValue(m, 'shardkit_relay_holding', { outbox: 'legacy' })).toBe(1)
    expect(m.get('shardkit_relay_published_total')!.type).toBe('COUNTER')
  })
})
