/**
 * Fault scenario: the documented repair path, with its processes killed.
 * After a complete backfill, copies in the shards are damaged by hand (rows
 * deleted from a user shard, rows changed in a merchant shard). `shardctl
 * verify` is killed (SIGKILL) after its 2nd compared chunk and rerun with
 * --report; `shardctl repair --execute` is killed after its 5th applied
 * statement and rerun with the same report (statements are idempotent).
 * Then verify is clean and every legacy row is exactly once in each
 * dimension. ~15 s.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { qualified } from '../../src/runtime/mysql.js'
import { poolFor } from '../../src/dualwrite/connections.js'
import { shardLocation } from '../../src/dualwrite/placement.js'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { walkTo } from '../integration/cutover-support.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'
import { runShardctl, spawnShardctl } from './support/shardctl.js'
import { assertOrdersExactlyOnce, type OrderLedger } from './support/invariants.js'

const ROWS = 2_000
let fleet: FaultFleet
let hooks: HookServer

beforeAll(async () => {
  fleet = await faultFleet('fverifykill')
  await generateOrders(fleet.rt.legacy(), { database: fleet.config.legacy.database, table: fleet.config.legacy.table, rows: ROWS, seed: 13 })
  hooks = await HookServer.listen()
  await walkTo(fleet.rt, 'dual-write', 100, { ackTimeoutMs: 10_000 })
  const bf = await runShardctl(fleet.configPath, ['backfill', '--json'])
  expect(bf.code, bf.stderr).toBe(0)
})

afterAll(async () => {
  await hooks?.close()
  await fleet?.cleanup()
})

describe('verify and repair killed mid-way, then rerun', () => {
  it('ends clean, every legacy row exactly once in each dimension', async () => {
    // Damage: 4 orders lose their user copy, 4 others get a changed merchant copy.
    const [picked] = await fleet.rt.legacy().query<RowDataPacket[]>(`SELECT order_id, user_id, merchant_id FROM ${qualified(fleet.config.legacy.database, fleet.config.legacy.table)} ORDER BY order_id LIMIT 8`)
    let damaged = 0
    for (const [i, r] of picked.entries()) {
      const side = i < 4 ? 'user' : 'merchant'
      const l = shardLocation(fleet.config, side, String(side === 'user' ? r.user_id : r.merchant_id))
      const sql = side === 'user' ? `DELETE FROM ${qualified(l.database, l.table)} WHERE order_id = ?` : `UPDATE ${qualified(l.database, l.table)} SET status = 'tampered' WHERE order_id = ?`
      const [res] = await poolFor(fleet.rt, l.host).query(sql, [String(r.order_id)])
      damaged += (res as { affectedRows: number }).affectedRows
    }
    expect(damaged).toBe(8)

    let n = 0
    const v1 = spawnShardctl(fleet.configPath, ['verify', '--chunk-size', '300', '--rounds', '1', '--json'], { hooks: hooks.path! })
    const compared = await hooks.waitFor('verify.chunk-compared', { where: () => ++n === 2 })
    process.kill(compared.pid, 'SIGKILL')
    expect((await v1.done).signal).toBe('SIGKILL')

    const report = join(fleet.configPath, '..', 'verify-report.json')
    const v2 = await runShardctl(fleet.configPath, ['verify', '--chunk-size', '300', '--rounds', '1', '--report', report, '--json'])
    expect(v2.code, v2.stderr).toBe(4)
    expect(v2.json).toMatchObject({ clean: false })
    // Each damaged copy differs from legacy (and, depending on the pairs compared, from the other dimension).
    expect(v2.json.differences).toBeGreaterThanOrEqual(damaged)

    let k = 0
    const r1 = spawnShardctl(fleet.configPath, ['repair', '--report', report, '--execute', '--json'], { hooks: hooks.path! })
    const applied = await hooks.waitFor('repair.statement-applied', { where: () => ++k === 5 })
    process.kill(applied.pid, 'SIGKILL')
    expect((await r1.done).signal).toBe('SIGKILL')

    const r2 = await runShardctl(fleet.configPath, ['repair', '--report', report, '--execute', '--json'])
    expect(r2.code, r2.stderr).toBe(0)
    const v3 = await runShardctl(fleet.configPath, ['verify', '--json'])
    expect(v3.code, v3.stderr).toBe(0)
    expect(v3.json).toMatchObject({ clean: true, differences: 0 })

    const ledger: OrderLedger = new Map()
    const { present } = await assertOrdersExactlyOnce(fleet.rt, ledger, { legacy: true, adoptLegacyRows: true })
    const [[c]] = (await fleet.rt.legacy().query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(fleet.config.legacy.database, fleet.config.legacy.table)}`)) as unknown as [RowDataPacket[]]
    expect(present).toBe(Number(c!.n))
  })
})
