/**
 * Issue 17, by reading: the legacy relay asks every user outbox about the
 * flip barrier, so one unreachable user host stopped all legacy events. Now
 * each counterpart answers for its own orders: with shard host h2 cut (a TCP
 * proxy between the relay and it), the legacy events of users on h1 go out,
 * those of users on h2 wait, and once h2 is back they follow, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Connection } from 'rabbitmq-client'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { shardLocation } from '../../src/dualwrite/placement.js'
import { createOutboxHook } from '../../src/events/outbox.js'
import { OutboxRelay } from '../../src/events/relay.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testMysqlUrl, testPrefix } from '../support/db.js'
import { collect, deleteTopology, firstArrivals, misordered, testAmqpUrl, withEvents } from '../support/events.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { FixedStage, hostPools, newOrderId, orderRow } from './dualwrite-support.js'

const prefix = testPrefix('evhosts')
const exchange = `${prefix}ex`
const queue = `${prefix}q`
let proxy: TcpProxy
let rt: Runtime
let amqp: Connection
let pools: ReturnType<typeof hostPools>
let config: ReturnType<typeof testFleetConfig>

beforeAll(async () => {
  proxy = await startTcpProxy({ targetPort: Number(new URL(testMysqlUrl()).port || 3306) })
  const viaProxy = new URL(testMysqlUrl())
  viaProxy.host = `127.0.0.1:${proxy.port}`
  config = withEvents(testFleetConfig({ prefix, shardHosts: [testMysqlUrl(), viaProxy.toString()] }), exchange)
  pools = hostPools(config)
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  amqp = new Connection({ url: testAmqpUrl(), connectionName: `${prefix} test` })
  amqp.on('error', () => undefined)
  await amqp.onConnect(10_000)
}, 60_000)
afterAll(async () => {
  await deleteTopology(amqp, { queues: [queue], exchanges: [exchange] })
  await amqp?.close()
  await rt?.close()
  await pools?.end()
  await proxy?.close()
  await dropPrefixedDatabases(prefix)
})

describe('legacy relay with one user host unreachable', () => {
  it('publishes the orders of the reachable hosts and holds only the unreachable host\'s, which follow once it is back', async () => {
    const stage = new FixedStage(config, pools.get, rt)
    await stage.set('legacy')
    const store = new DualWriteStore({ runtime: rt, stage, onPrimaryWrite: createOutboxHook({ config: rt.config }) })
    const users = { h1: [] as string[], h2: [] as string[] }
    for (let u = 7000; users.h1.length < 4 || users.h2.length < 4; u++) {
      const h = shardLocation(config, 'user', String(u)).host as 'h1' | 'h2'
      if (users[h].length < 4) users[h].push(String(u))
    }
    const orders = new Map<string, { host: string }>()
    for (const [host, list] of Object.entries(users)) {
      for (const u of list) {
        const id = newOrderId(u)
        await store.insert(orderRow(id, u, '700'), { event: { type: 'created' } })
        await store.update(id, { status: 'paid' }, { event: { type: 'paid' } })
        orders.set(id, { host })
      }
    }
    const c = await collect(amqp, exchange, queue)
    proxy.cut() // h2 (its user outboxes) no longer answers
    const relay = new OutboxRelay({ runtime: rt, outboxes: ['legacy'], idleMs: 10, maxBackoffMs: 200 })
    try {
      const r1 = await relay.drain()
      expect(r1[0]).toMatchObject({ published: 8, blocked: true })
      await c.waitFor(8)
      const sent = new Set(c.events.map((e) => e.orderId))
      expect([...sent].sort()).toEqual([...orders].filter(([, o]) => o.host === 'h1').map(([id]) => id).sort())
      proxy.restore()
      // the relay probes h2 again once its backoff ran out: drain until it did
      let published = 0
      for (let i = 0; i < 500 && published < 8; i++) {
        published += (await relay.drain())[0]!.published
        if (published < 8) await new Promise((res) => setTimeout(res, 10))
      }
      expect(published).toBe(8)
      await c.waitFor(16)
      const { byOrder, duplicates } = firstArrivals(c.events)
      expect(duplicates).toBe(0)
      expect(misordered(byOrder, new Map([...orders.keys()].map((id) => [id, 2])))).toEqual([])
    } finally {
      await relay.stop()
      await c.close()
      await store.flush().catch(() => undefined)
    }
  }, 60_000)
})

