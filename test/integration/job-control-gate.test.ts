/**
 * The job-control gate on its own, against the control database: settings
 * reach the next chunk within the poll interval, a pause lets the chunk in
 * flight settle before it waits, a throttle holds rows/s from the moment it
 * was set, a limit held long enough notifies once, and the progress row
 * carries exact figures and recent samples.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { changeJobSettings } from '../../src/jobs/settings.js'
import { openJobControl, type JobNotice } from '../../src/jobs/control.js'
import { readJobProgress } from '../../src/status/sources.js'
import { qualified } from '../../src/runtime/mysql.js'
import { readStatus } from '../../src/status/build.js'
import { testFleetRaw } from '../support/db.js'
import { setupFleet, type Fleet } from './cutover-support.js'
import { shardctlInProcess, writeConfigFile } from './operator-support.js'

let fleet: Fleet
beforeAll(async () => {
  fleet = await setupFleet('jobgate')
})
afterAll(async () => {
  await fleet?.cleanup()
})

describe('job control gate', () => {
  it('applies settings at the next chunk, settles before a pause, throttles from when the limit was set, notifies a long throttle once', async () => {
    const notices: JobNotice[] = []
    const gate = await openJobControl(fleet.rt, 'verify', { scope: 'all', pollMs: 50, reportMs: 100, throttledNoticeMs: 300, onNotice: (n) => notices.push(n) })
    let rows = 0
    const progress = () => ({ rowsDone: rows, rowsTotal: 10_000, chunks: rows / 100, chunkSize: 100, concurrency: 2 })
    expect(await gate.betweenChunks(progress)).toEqual({ chunkSize: null, concurrency: null, maxRowsPerSecond: null })

    await changeJobSettings(fleet.rt, 'verify', { chunkSize: 500, concurrency: 3 }, 'gate-test')
    await new Promise((r) => setTimeout(r, 60))
    expect(await gate.betweenChunks(progress)).toMatchObject({ chunkSize: 500, concurrency: 3 })

    // Pause: the chunk in flight settles first; the gate then waits until resumed.
    await changeJobSettings(fleet.rt, 'verify', { paused: true }, 'gate-test')
    await new Promise((r) => setTimeout(r, 60))
    let settled = false
    const waiting = gate.betweenChunks(progress, async () => {
      await new Promise((r) => setTimeout(r, 100))
      settled = true
    })
    let released = false
    void waiting.then(() => (released = true))
    await new Promise((r) => setTimeout(r, 400))
    expect(settled).toBe(true)
    expect(released).toBe(false)
    expect((await readJobProgress(fleet.rt)).get('verify')).toMatchObject({ state: 'paused', rowsTotal: 10_000 })
    await changeJobSettings(fleet.rt, 'verify', { paused: false }, 'gate-test')
    await waiting
    expect(notices.map((n) => n.kind)).toEqual(['paused', 'resumed'])

    // Throttle 1000 rows/s: 100-row chunks come at most every 100 ms, measured from when the limit began.
    await changeJobSettings(fleet.rt, 'verify', { maxRowsPerSecond: 1000 }, 'gate-test')
    await new Promise((r) => setTimeout(r, 60))
    await gate.betweenChunks(progress)
    const t0 = performance.now()
    for (let i = 0; i < 8; i++) {
      rows += 100
      await gate.betweenChunks(progress)
    }
    const rate = 800 / ((performance.now() - t0) / 1000)
    expect(rate).toBeLessThanOrEqual(1000 * 1.05)
    expect(rate).toBeGreaterThan(1000 * 0.8)
    expect(notices.filter((n) => n.kind === 'throttled-long')).toHaveLength(1)
    expect(notices.find((n) => n.kind === 'throttled-long')).toMatchObject({ job: 'verify', maxRowsPerSecond: 1000 })

    await gate.finish('finished', progress())
    const p = (await readJobProgress(fleet.rt)).get('verify')!
    expect(p).toMatchObject({ state: 'finished', rowsDone: 800, rowsTotal: 10_000, maxRowsPerSecond: 1000 })
    expect(p.finishedAt).not.toBeNull()
    expect(p.samples.length).toBeGreaterThanOrEqual(2)
  })

  it('a throttled job that fell behind (a stall) catches up by at most 1 s of rows, then holds the limit again', async () => {
    let now = 0
    await changeJobSettings(fleet.rt, 'backfill', { maxRowsPerSecond: 100 }, 'gate-test')
    const gate = await openJobControl(fleet.rt, 'backfill', { scope: 'all', pollMs: 20, reportMs: 1_000, now: () => now })
    let rows = 0
    const progress = () => ({ rowsDone: rows, rowsTotal: 100_000, chunks: rows / 10, chunkSize: 10, concurrency: 1 })
    await gate.betweenChunks(progress)
    // A 10 s stall (the process starved, a chunk stuck on a lock), 10 rows done in it.
    now += 10_000
    rows += 10
    // Chunks of 10 rows from here: the first 1 s of credit (100 rows) goes at once ...
    let free = 0
    for (let i = 0; i < 20; i++) {
      let waited = false
      const p = gate.betweenChunks(progress).then(() => undefined)
      // The gate sleeps on real timers (pollMs); advance the fake clock while it waits.
      const tick = setInterval(() => ((now += 20), (waited = true)), 5)
      await p
      clearInterval(tick)
      if (!waited) free++
      rows += 10
    }
    // ... and no more: without the cap all 20 chunks (and 90 more) would have gone without a wait.
    expect(free).toBeGreaterThanOrEqual(9)
    expect(free).toBeLessThanOrEqual(11)
    await gate.finish('finished', progress())
    await changeJobSettings(fleet.rt, 'backfill', { maxRowsPerSecond: null }, 'gate-test')
  })

  it('a fleet provisioned before job control: no DDL is issued, pause says to provision (exit 3), status still answers', async () => {
    const db = fleet.config.control.database
    for (const t of ['shardkit_job_control', 'shardkit_job_progress']) await fleet.rt.control().query(`DROP TABLE ${qualified(db, t)}`)
    await expect(openJobControl(fleet.rt, 'backfill', { scope: 'all' })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' })
    await expect(changeJobSettings(fleet.rt, 'backfill', { paused: true }, 'x')).rejects.toThrow(/run `shardctl provision`/)
    const configPath = writeConfigFile(testFleetRaw({ prefix: fleet.prefix }))
    const r = await shardctlInProcess(configPath, ['backfill', 'pause'])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain('shardctl provision')
    const bf = await shardctlInProcess(configPath, ['backfill', '--force', '--reason', 'job tables missing on purpose'])
    expect(bf.code, bf.stderr).toBe(0)
    expect(bf.stderr).toContain('runs without pause/resume/throttle')
    const d = await readStatus(fleet.rt)
    expect(d.backfill.settings).toMatchObject({ paused: false })
    expect(d.backfill.state).toBe('complete')
    expect(d.backfill.why.job).toBe('no backfill has run under job control yet')
    const [tables] = await fleet.rt.control().query(`SHOW TABLES FROM ${qualified(db, 'x').split('.')[0]} LIKE 'shardkit\\_job\\_%'`)
    expect(tables).toEqual([])
  })
})
