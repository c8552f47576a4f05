/**
 * Regression, issue 15 defect 9 (found by reading; shown here first): if the
 * control database blipped after the commit point, `appendAudit` threw after
 * the fences were open, and the CLI reported a completed move as failed. An
 * operator who then "retried" would have moved the fleet one step further
 * than meant. Now the move returns `done` with a warning saying the audit
 * row is missing, and the stage, the durable copy and the fences agree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { moveStage } from '../../src/cutover/steps.js'
import { readDurableStage, readStageState } from '../../src/cutover/switch-store.js'
import { readFences } from '../../src/cutover/fence.js'
import { openRuntime } from '../../src/runtime/runtime.js'
import { passingReaders, walkTo } from '../integration/cutover-support.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { testMysqlUrl } from '../support/db.js'
import { HookServer } from './support/hook-server.js'
import { faultFleet, type FaultFleet } from './support/fleet.js'

let fleet: FaultFleet
let proxy: TcpProxy

beforeAll(async () => {
  fleet = await faultFleet('fauditcommit')
  const mysql = new URL(testMysqlUrl())
  proxy = await startTcpProxy({ targetHost: mysql.hostname, targetPort: Number(mysql.port || 3306) })
})

afterAll(async () => {
  proxy?.restore()
  await fleet?.cleanup()
  await proxy?.close()
})

describe('defect 9: the control database fails right after the commit point', () => {
  it('the move is reported done (with a warning), not failed; stage, durable copy and fences agree', async () => {
    await walkTo(fleet.rt, 'dual-write', 100, { ackTimeoutMs: 10_000 })
    const via = new URL(fleet.config.control.url)
    via.hostname = '127.0.0.1'
    via.port = String(proxy.port)
    const mover = openRuntime({ ...fleet.config, control: { ...fleet.config.control, url: via.toString() } })
    const hooks = HookServer.inProcess()
    let outcome: string
    let warnings: readonly string[] = []
    try {
      const opened = hooks.waitFor('cutover.fences-opened')
      const moving = moveStage(mover, { kind: 'advance', readers: passingReaders(), actor: 'fault-test' })
      const at = await opened
      proxy.cut()
      at.continue()
      const r = await moving.then(
        (x) => x,
        (err: unknown) => ({ outcome: `threw ${(err as { code?: string }).code ?? (err as Error).message}`, warnings: [] as string[], to: null }),
      )
      outcome = r.outcome
      warnings = r.warnings
    } finally {
      proxy.restore()
      await hooks.close()
      await mover.close()
    }
    expect(outcome).toBe('done')
    expect(warnings.join(' ')).toContain('audit row could not be written')
    const durable = (await readDurableStage(fleet.rt))!.state
    expect(durable.stage).toBe('shadow-read')
    expect(await readStageState(fleet.rt)).toMatchObject({ stage: 'shadow-read', version: durable.version })
    for (const f of await readFences(fleet.rt)) expect(f).toMatchObject({ state: 'open', version: durable.version })
  })
})
