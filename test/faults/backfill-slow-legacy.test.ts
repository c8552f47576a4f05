/**
 * Fault scenario: the legacy host made slow (every packet delayed by a TCP
 * proxy in front of the backfill's legacy connection: 250 ms by default,
 * 500 ms with SHARDKIT_FAULTS_LONG=1, which takes minutes) during a
 * backfill at dual-write, with live writes through the store. The automatic
 * chunk sizing throttles: chunks shrink (shorter shared-lock windows on
 * legacy) instead of holding locks longer; the copy completes, the live
 * writes keep going, and every row ends up exactly once in each dimension.
 * ~15 s (long profile: a few minutes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StageWatcher } from '../../src/cutover/watcher.js'
import type { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal } from '../../src/dualwrite/journal.js'
import { runBackfill } from '../../src/backfill/index.js'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { testMysqlUrl } from '../support/db.js'
import { faultFleet, instanceAtDualWrite, type FaultFleet } from './support/fleet.js'
import { startLoad } from './support/load.js'
import { assertOrdersExactlyOnce, type OrderLedger } from './support/invariants.js'

const LONG = process.env.SHARDKIT_FAULTS_LONG === '1'
const DELAY_MS = LONG ? 500 : 250
const ROWS = 2_000
let fleet: FaultFleet
let proxy: TcpProxy
let watcher: StageWatcher
let store: DualWriteStore
const ledger: OrderLedger = new Map()

beforeAll(async () => {
  fleet = await faultFleet('fslowlegacy')
  await generateOrders(fleet.rt.legacy(), { database: fleet.config.legacy.database, table: fleet.config.legacy.table, rows: ROWS, seed: 17 })
  const mysql = new URL(testMysqlUrl())
  proxy = await startTcpProxy({ targetHost: mysql.hostname, targetPort: Number(mysql.port || 3306) })
  ;({ watcher, store } = await instanceAtDualWrite(fleet, 'fault-slowlegacy'))
})

afterAll(async () => {
  await watcher?.close()
  await fleet?.cleanup()
  await proxy?.close()
})

describe(`legacy slow (${DELAY_MS} ms per packet) during a backfill`, () => {
  it('shrinks the chunks, completes, and copies every row exactly once while live writes go on', async () => {
    const slow = new URL(testMysqlUrl())
    slow.hostname = '127.0.0.1'
    slow.port = String(proxy.port)
    const backfillRt = fleet.instance({ legacyUrl: slow.toString() })
    const sizes: number[] = []
    const load = startLoad(store, ledger, { workers: 2, pauseMs: 10 })
    let result
    try {
      proxy.delay(DELAY_MS)
      // The live load stops once the backfill reached the rows that existed at its start: a backfill
      // reads `pk > last` to the end of the table, so under steady inserts it chases the tail (see report).
      let stopping: Promise<unknown> | undefined
      result = await runBackfill(backfillRt, {
        chunkSize: 'auto',
        onProgress: (p) => {
          sizes.push(p.chunkSize)
          if (p.rowsDone >= ROWS) stopping ??= load.stop()
        },
      })
      await stopping
    } finally {
      proxy.delay(0)
      await load.stop()
    }
    expect(result).toMatchObject({ completed: true })
    expect(result.rowsCopied).toBeGreaterThanOrEqual(ROWS)
    // The first chunk (1000 rows) took far longer than the 500 ms target: every later one is smaller.
    expect(sizes.length).toBeGreaterThanOrEqual(2)
    expect(Math.max(...sizes.slice(1))).toBeLessThan(1_000)
    expect(load.stats.inserts).toBeGreaterThan(10)
    await store.flush()
    expect(await drainJournal(fleet.rt)).toMatchObject({ failed: 0, remaining: 0 })
    const { present } = await assertOrdersExactlyOnce(fleet.rt, ledger, { legacy: true, adoptLegacyRows: true })
    expect(present).toBeGreaterThanOrEqual(ROWS)
    console.info(`[faults] backfill-slow-legacy (${DELAY_MS} ms): ${ROWS} rows in ${result.seconds.toFixed(1)} s, chunk sizes ${sizes.join(' -> ')}, ${load.stats.inserts} live inserts meanwhile`)
  }, LONG ? 600_000 : 120_000)
})
