/**
 * Fault scenario: a shard host (a separate mariadbd holding half of the user
 * and merchant shards) killed with SIGKILL under write load at dual-write,
 * down for a while, then restarted. Every write is acknowledged meanwhile
 * (its missed secondary copies are journaled), the drain completes once the
 * host is back, and no acknowledged order is lost or duplicated.
 *
 * Profile: down 6 s by default; SHARDKIT_FAULTS_LONG=1 keeps it down 30 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StageWatcher } from '../../src/cutover/watcher.js'
import type { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal, readJournalStatus } from '../../src/dualwrite/journal.js'
import { startMariadbInstance, type MariadbInstance } from '../support/mariadb-instance.js'
import { testMysqlUrl } from '../support/db.js'
import { faultFleet, instanceAtDualWrite, type FaultFleet } from './support/fleet.js'
import { startLoad } from './support/load.js'
import { assertOrdersExactlyOnce, assertStageAgreement, type OrderLedger } from './support/invariants.js'

const DOWN_MS = process.env.SHARDKIT_FAULTS_LONG === '1' ? 30_000 : 6_000
let host: MariadbInstance
let fleet: FaultFleet
let watcher: StageWatcher
let store: DualWriteStore
const ledger: OrderLedger = new Map()

beforeAll(async () => {
  host = await startMariadbInstance()
  fleet = await faultFleet('fhostdown', { shardHosts: [testMysqlUrl(), host.url] })
  ;({ watcher, store } = await instanceAtDualWrite(fleet, 'fault-hostdown', 500))
}, 180_000)

afterAll(async () => {
  await watcher?.close()
  await fleet?.cleanup()
  await host?.destroy()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe(`a shard host down for ${DOWN_MS / 1000} s under write load`, () => {
  it('keeps acknowledging writes, journals the misses, drains after the restart; nothing lost or duplicated', async () => {
    const load = startLoad(store, ledger, { workers: 4, pauseMs: 5 })
    let duringOutage = 0
    try {
      await sleep(1_000)
      await host.kill()
      const atKill = load.stats.inserts
      await sleep(DOWN_MS)
      duringOutage = load.stats.inserts - atKill
      const legacyDepth = (await readJournalStatus(fleet.rt)).find((s) => s.primary === 'legacy')!.depth
      expect(legacyDepth).toBeGreaterThan(0)
      await host.start()
      await sleep(1_000)
    } finally {
      const stats = await load.stop()
      expect(stats.unknown, 'every write was acknowledged').toEqual({})
      expect(stats.deletes).toBeGreaterThan(0)
    }
    // Writes went on at a useful rate while the host was down (their copies journaled).
    expect(duringOutage).toBeGreaterThan(DOWN_MS / 500)
    expect(store.stats().secondaryFailures).toBeGreaterThan(0)
    await store.flush()
    const drained = await drainJournal(fleet.rt)
    expect(drained).toMatchObject({ failed: 0, remaining: 0, unreachable: [] })
    expect(drained.replayed).toBeGreaterThan(0)
    await assertStageAgreement(fleet.rt, [watcher])
    const { present } = await assertOrdersExactlyOnce(fleet.rt, ledger, { legacy: true })
    expect(present).toBeGreaterThan(duringOutage / 2)
    console.info(`[faults] shard-host-down ${DOWN_MS / 1000} s: ${duringOutage} inserts acknowledged while down, ${store.stats().secondaryFailures} copies journaled, drain replayed ${drained.replayed}, ${present} orders verified`)
  })
})
