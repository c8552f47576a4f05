/**
 * `shardctl status --json` at each stage of a walk (legacy -> shards, with a
 * backfill, verifies and a mismatch on the way) and with Redis down: the
 * document names its source, exact rows, the shard states, and a reason for
 * every value it leaves empty.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { qualified } from '../../src/runtime/mysql.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import type { StatusDocument } from '../../src/status/document.js'
import { testFleetRaw } from '../support/db.js'
import { setupFleet, until, walkTo, type Fleet } from './cutover-support.js'
import { nullsWithoutWhy, shardctlInProcess, writeConfigFile } from './operator-support.js'

const ROWS = 1500
let fleet: Fleet
let configPath: string
let deadRedisConfig: string

beforeAll(async () => {
  fleet = await setupFleet('statuswalk')
  await generateOrders(fleet.rt.legacy(), { database: fleet.config.legacy.database, table: fleet.config.legacy.table, rows: ROWS, seed: 11 })
  const raw = testFleetRaw({ prefix: fleet.prefix })
  configPath = writeConfigFile(raw)
  // Nothing listens on port 9 (discard) here: every Redis call is refused.
  deadRedisConfig = writeConfigFile({ ...raw, redis: { ...(raw as { redis: object }).redis, url: 'redis://127.0.0.1:9' } })
})
afterAll(async () => {
  await fleet?.cleanup()
})

async function status(path = configPath): Promise<StatusDocument> {
  const r = await shardctlInProcess(path, ['status', '--json'])
  expect(r.code, r.stderr).toBe(0)
  const doc = r.json as StatusDocument
  expect(doc.schemaVersion).toBe(1)
  expect(Date.parse(doc.generatedAt)).toBeGreaterThan(Date.now() - 60_000)
  expect(nullsWithoutWhy(doc)).toEqual([])
  expect(doc.shards.user).toHaveLength(120)
  expect(doc.shards.merchant).toHaveLength(120)
  return doc
}

describe('status --json through a whole walk', () => {
  it('legacy: nothing started, every blank says why', async () => {
    const d = await status()
    expect(d.stage).toMatchObject({ stage: 'legacy', version: 0, source: 'default' })
    expect(d.sources).toMatchObject({ controlDb: { ok: true }, redis: { ok: true } })
    expect(d.backfill.state).toBe('not-started')
    expect(d.backfill.why.etaSeconds).toBe('backfill not started')
    expect(d.shards.counts.all.pending).toBe(240)
    expect(d.verify.pairs['legacy-user']).toBeNull()
    expect(d.runLock.holder).toBeNull()
    expect(d.runLock.why.holder).toContain('no cutover move')
    expect(d.journal.depth).toBe(0)
    expect(d.nextStep).toContain('shardctl cutover advance')
  })

  it('dual-write, backfilled: exact rows, 100 %, shards copied; then verified', async () => {
    await walkTo(fleet.rt, 'dual-write')
    let d = await status()
    expect(d.stage).toMatchObject({ stage: 'dual-write', version: 1, source: 'redis', enteredBy: 'test' })
    expect(d.instances.list).toEqual([])
    expect(d.nextStep).toContain('shardctl backfill')

    const bf = await shardctlInProcess(configPath, ['backfill', '--chunk-size', '200', '--json'])
    expect(bf.code, bf.stderr).toBe(0)
    d = await status()
    expect(d.backfill).toMatchObject({ state: 'complete', rowsDone: ROWS, rowsTotal: ROWS, percent: 100, etaSeconds: 0 })
    expect(d.backfill.job).toMatchObject({ state: 'finished', chunks: Math.ceil(ROWS / 200) })
    expect(d.shards.counts.all.copied).toBe(240)
    expect(d.nextStep).toContain('shardctl verify')

    const v = await shardctlInProcess(configPath, ['verify', '--json'])
    expect(v.code, v.stderr).toBe(0)
    d = await status()
    expect(d.shards.counts.all.verified).toBe(240)
    expect(d.verify.pairs['legacy-user']).toMatchObject({ clean: true, mode: 'full', differences: 0, countsForStage: true })
    expect(d.verify.pairs['legacy-merchant']).toMatchObject({ clean: true })
    expect(d.verify.pairs['user-merchant']).toMatchObject({ clean: true })
    expect(d.nextStep).toContain('cutover advance')
  })

  it('a difference lands on its shard as a mismatch, then clears', async () => {
    const [[row]] = await fleet.rt.legacy().query<RowDataPacket[]>(`SELECT order_id, user_id FROM ${qualified(fleet.config.legacy.database, fleet.config.legacy.table)} ORDER BY order_id LIMIT 1 OFFSET 700`)
    const p = fleet.config.dimensions.user.shards[shardOfKey(String(row!.user_id))]!
    const t = qualified(p.database, p.table)
    await fleet.rt.host(p.host).query(`DELETE FROM ${t} WHERE order_id = ?`, [row!.order_id])
    const v = await shardctlInProcess(configPath, ['verify', '--rounds', '1', '--json'])
    expect(v.code).toBe(4)
    let d = await status()
    expect(d.shards.user[p.shard]).toMatchObject({ state: 'mismatch', differences: 1 })
    expect(d.shards.counts.user.mismatch).toBe(1)
    expect(d.shards.counts.merchant.verified, JSON.stringify(d.shards.merchant.filter((s) => s.state !== 'verified'))).toBe(120)
    expect(d.problems.join(' ')).toContain('verify differences')
    await fleet.rt.host(p.host).query(`INSERT INTO ${t} SELECT * FROM ${qualified(fleet.config.legacy.database, fleet.config.legacy.table)} WHERE order_id = ?`, [row!.order_id])
    expect((await shardctlInProcess(configPath, ['verify', '--json'])).code).toBe(0)
    d = await status()
    expect(d.shards.counts.all.verified).toBe(240)
  })

  it('shadow-read, read-shards 50 %, write-shards, shards: stage, entry and verify age per stage', async () => {
    for (const [stage, pct] of [['shadow-read', 0], ['read-shards', 50], ['write-shards', 100], ['shards', 100]] as const) {
      await walkTo(fleet.rt, stage, pct === 0 ? 100 : pct)
      const d = await status()
      expect(d.stage).toMatchObject({ stage, readPercent: pct, source: 'redis', enteredBy: 'test' })
      expect(Date.parse(d.stage.enteredAt!)).toBeGreaterThan(Date.now() - 60_000)
      expect(d.stage.problem).toBeNull()
      // The last verify ran before this stage was entered: it does not count for the next move.
      expect(d.verify.last?.countsForStage).toBe(false)
      expect(d.primaries.every((p) => p.fence.state === 'open' && p.fence.version === d.stage.version)).toBe(true)
    }
  })

  it('with Redis down: the stage comes from the control database, and the document says so', async () => {
    const t0 = performance.now()
    const d = await status(deadRedisConfig)
    expect(performance.now() - t0).toBeLessThan(5_000)
    expect(d.sources.redis.ok).toBe(false)
    expect(d.sources.redis.error).toBeTruthy()
    expect(d.stage).toMatchObject({ stage: 'shards', source: 'control-db' })
    expect(d.instances.list).toBeNull()
    expect(d.instances.why.list).toMatch(/^Redis unreachable/)
    // The run lock lives in the control database (it must survive what Redis loses): still read.
    expect(d.runLock.why.holder).toBe('no cutover move is running')
    expect(d.problems[0]).toMatch(/^Redis unreachable/)
    expect(d.backfill.state).toBe('complete')
  })

  it('with the control database down: the stage comes from Redis, the control-database sections say why', async () => {
    const raw = testFleetRaw({ prefix: fleet.prefix }) as { control: { url: string; database: string } }
    const dead = writeConfigFile({ ...raw, control: { ...raw.control, url: 'mysql://root@127.0.0.1:9' } })
    const d = await status(dead)
    expect(d.sources.controlDb).toMatchObject({ ok: false })
    expect(d.stage).toMatchObject({ stage: 'shards', source: 'redis' })
    expect(d.stage.why.enteredAt).toContain('control database is unreachable')
    expect(d.backfill.state).toBe('unknown')
    expect(d.backfill.why.rowsTotal).toContain('control database is unreachable')
    expect(d.runLock.why.holder).toContain('cannot be read')
    expect(d.shards.counts.all.error).toBe(240)
    expect(d.problems.join(' ')).toContain('the control database is unreachable')
  })

  it('as text: the summary line, the shard rows as glyphs, the next step', async () => {
    const r = await shardctlInProcess(configPath, ['status'])
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^Stage: shards v\d+; Copy: 1,500\/1,500 100%; .*Shards: U 120\/120 M 120\/120 verified; Verify: clean full/)
    expect(lines.find((l) => l.startsWith('  U '))).toBe(`  U ${'#'.repeat(120)}`)
    expect(r.stdout).toContain('next         the migration is complete')
  })

  it('--watch prints one NDJSON document per interval when stdout is not a terminal, and stops on SIGINT', async () => {
    const root = join(import.meta.dirname, '..', '..')
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', configPath, 'status', '--watch', '--interval', '300ms'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHARDKIT_LOG_LEVEL: 'warn' } })
    let out = ''
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    await until(() => out.split('\n').filter(Boolean).length >= 4, 30_000, 'four documents')
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    const docs = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as StatusDocument)
    expect(docs.length).toBeGreaterThanOrEqual(4)
    for (const d of docs) expect(d).toMatchObject({ schemaVersion: 1, stage: { stage: 'shards' } })
    // One per interval: the first build (connections opening) may overrun it, then they come 300 ms apart.
    const times = docs.map((d) => Date.parse(d.generatedAt))
    expect((times.at(-1)! - times[1]!) / (times.length - 2)).toBeGreaterThanOrEqual(250)
  })
})
