/**
 * The fleet the outbox relay tests start from: the legacy table, the shards
 * provisioned, the stage fixed at legacy, a DualWriteStore whose primary
 * writes fill the outbox (key columns from the config), and a connection to
 * the broker for the test's own declarations. The caller closes `rt` and `amqp`.
 */
import { Connection } from 'rabbitmq-client'
import type { ShardkitConfig } from '../../src/config/schema.js'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { createOutboxHook } from '../../src/events/outbox.js'
import { createLegacyTable } from '../support/db.js'
import { testAmqpUrl } from '../support/events.js'
import { FixedStage, type hostPools } from './dualwrite-support.js'

export interface OutboxFleet {
  readonly rt: Runtime
  readonly stage: FixedStage
  readonly store: DualWriteStore
  readonly amqp: Connection
}

export async function openOutboxFleet(base: ShardkitConfig, pools: ReturnType<typeof hostPools>, name: string): Promise<OutboxFleet> {
  await createLegacyTable(base)
  const rt = openRuntime(base)
  await provision(rt)
  const stage = new FixedStage(base, pools.get, rt)
  await stage.set('legacy')
  const store = new DualWriteStore({ runtime: rt, stage, onPrimaryWrite: createOutboxHook({ config: rt.config }) })
  const amqp = new Connection({ url: testAmqpUrl(), connectionName: `${name} test` })
  amqp.on('error', () => undefined)
  await amqp.onConnect(10_000)
  return { rt, stage, store, amqp }
}
