/**
 * The operator's path through the built CLI on a generated 100k-row legacy
 * table: backfill, verify clean, a row changed by hand in a shard, verify
 * exit 4 naming that key, repair (printed, then executed), verify clean.
 * Then a backfill killed with SIGKILL mid-run resumes from its checkpoint
 * with no gap and no row written twice, and SIGINT stops at a checkpoint.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RowDataPacket } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/schema.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetRaw, testPrefix } from '../support/db.js'
import { deleteRedisKeys } from '../integration/cutover-support.js'

const ROWS = 100_000
const prefix = testPrefix('bvrcli')
const dir = mkdtempSync(join(tmpdir(), 'shardkit-bvr-cli-'))
const configPath = join(dir, 'shardkit.json')
const reportPath = join(dir, 'report.json')
const root = join(import.meta.dirname, '..', '..')
const raw = testFleetRaw({ prefix })
const config = parseConfig(raw, {})
const env = { ...process.env, SHARDKIT_ACTOR: 'e2e-dba', SHARDKIT_LOG_LEVEL: 'warn' }
const cliArgs = (args: string[]) => ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', configPath, ...args]
let rt: Runtime

function shardctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, cliArgs(args), { cwd: root, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

async function checkpoint(): Promise<{ state: string; lastPk: string | null; rows: number } | undefined> {
  const [rows] = await rt.control().query<RowDataPacket[]>(`SELECT state, last_pk, rows_copied FROM ${qualified(config.control.database, 'backfill_checkpoint')} WHERE dimension = 'user'`)
  const r = rows[0]
  return r ? { state: r.state, lastPk: r.last_pk === null ? null : String(r.last_pk), rows: Number(r.rows_copied) } : undefined
}

/** Waits until the checkpoint has passed `rows`, polling the control table. */
async function waitForCheckpoint(rows: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const c = await checkpoint()
    if (c && c.state === 'running' && c.rows >= rows) return
    if (Date.now() > until) throw new Error(`backfill did not pass ${rows} rows in ${timeoutMs} ms (checkpoint ${JSON.stringify(c)})`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function emptyShards(): Promise<void> {
  for (const dim of ['user', 'merchant'] as const) {
    for (const p of config.dimensions[dim].shards) await rt.host(p.host).query(`DELETE FROM ${qualified(p.database, p.table)}`)
  }
}

/** Rows per dimension, and keys held more than once across its tables. */
async function dimensionCounts(dim: 'user' | 'merchant'): Promise<{ rows: number; distinct: number }> {
  const parts = config.dimensions[dim].shards.map((p) => `SELECT order_id FROM ${qualified(p.database, p.table)}`).join(' UNION ALL ')
  const [[r]] = await rt.host('h1').query<RowDataPacket[]>(`SELECT COUNT(*) AS n, COUNT(DISTINCT order_id) AS d FROM (${parts}) t`)
  return { rows: Number(r!.n), distinct: Number(r!.d) }
}

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify(raw, null, 2))
  await createLegacyTable(config)
  rt = openRuntime(config)
  await generateOrders(rt.legacy(), { database: config.legacy.database, table: config.legacy.table, rows: ROWS, seed: 5 })
  const prov = await shardctl('provision')
  expect(prov.code, prov.stderr).toBe(0)
  const adv = await shardctl('cutover', 'advance', '--reason', 'e2e: start dual writes')
  expect(adv.code, adv.stderr + adv.stdout).toBe(0)
}, 180_000)

afterAll(async () => {
  await rt?.close()
  rmSync(dir, { recursive: true, force: true })
  await deleteRedisKeys(config.redis.keyPrefix)
  await dropPrefixedDatabases(prefix)
})

describe('backfill, verify, repair through the CLI on 100k rows', () => {
  it('backfill then verify exits 0; a row changed by hand exits 4 naming it; repair --execute fixes it; verify exits 0', async () => {
    const bf = await shardctl('backfill', '--json')
    expect(bf.code, bf.stderr).toBe(0)
    expect(JSON.parse(bf.stdout)).toMatchObject({ completed: true, rowsCopied: ROWS, rowsTotal: ROWS })

    const v1 = await shardctl('verify', '--json')
    expect(v1.code, v1.stderr).toBe(0)
    expect(JSON.parse(v1.stdout)).toMatchObject({ clean: true, differences: 0, rowsCompared: ROWS, rowsBySide: { legacy: ROWS, user: ROWS, merchant: ROWS } })

    // One row changed by hand in its user shard.
    const [[row]] = await rt.legacy().query<RowDataPacket[]>(`SELECT order_id, user_id FROM ${qualified(config.legacy.database, config.legacy.table)} WHERE order_id = 54321`)
    const p = config.dimensions.user.shards[shardOfKey(String(row!.user_id))]!
    await rt.host(p.host).query(`UPDATE ${qualified(p.database, p.table)} SET total_cents = total_cents + 7 WHERE order_id = 54321`)

    const v2 = await shardctl('verify', '--report', reportPath, '--rounds', '1')
    expect(v2.code, v2.stderr).toBe(4)
    expect(v2.stdout).toContain('legacy-user different 54321')
    expect(v2.stderr).toContain('repair')
    const report = JSON.parse(readFileSync(reportPath, 'utf8'))
    // The user copy differs from legacy, and so from the merchant copy: nothing else.
    expect(report.differences.map((d: { pair: string; kind: string; key: string }) => `${d.pair} ${d.kind} ${d.key}`).sort()).toEqual(['legacy-user different 54321', 'user-merchant different 54321'])
    expect(report.differences[0]).toMatchObject({ pair: 'legacy-user', shard: p.shard })

    // Printed first: nothing changes.
    const plan = await shardctl('repair', '--report', reportPath)
    expect(plan.code, plan.stderr).toBe(0)
    expect(plan.stdout).toMatch(/INSERT INTO .* ON DUPLICATE KEY UPDATE/)
    expect(plan.stdout).toContain('nothing changed')
    expect((await shardctl('verify', '--rounds', '0')).code).toBe(4)

    const fix = await shardctl('repair', '--report', reportPath, '--execute', '--json')
    expect(fix.code, fix.stderr).toBe(0)
    expect(JSON.parse(fix.stdout)).toMatchObject({ executed: true, clean: true, keys: 1, sourceOfTruth: 'legacy' })

    const v3 = await shardctl('verify', '--json')
    expect(v3.code, v3.stderr).toBe(0)
    expect(JSON.parse(v3.stdout).clean).toBe(true)

    const quick = await shardctl('verify', '--since', '10m', '--json')
    expect(quick.code, quick.stderr).toBe(0)
    expect(JSON.parse(quick.stdout)).toMatchObject({ clean: true })
  }, 240_000)

  it('bad input: a missing or broken report and a bad --since exit 2 and change nothing', async () => {
    const missing = await shardctl('repair', '--report', join(dir, 'nope.json'), '--execute')
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--report')
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ differences: [{ pair: 'legacy-user', kind: 'different', key: '12; DROP TABLE x' }] }))
    const bad = await shardctl('repair', '--report', join(dir, 'bad.json'), '--execute')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('differences[0].key')
    const since = await shardctl('verify', '--since', 'yesterday')
    expect(since.code).toBe(2)
    expect(since.stderr).toContain('--since')
  }, 240_000)

  it('kill -9 mid-run: the same command resumes from the checkpoint; no gap, no row written twice', async () => {
    await emptyShards()
    await rt.control().query(`DELETE FROM ${qualified(config.control.database, 'backfill_checkpoint')}`)
    const child = spawn(process.execPath, cliArgs(['backfill', '--restart', '--chunk-size', '500', '--max-rows-per-second', '15000']), { cwd: root, env, stdio: 'ignore' })
    const exited = exitOf(child)
    await waitForCheckpoint(20_000)
    child.kill('SIGKILL')
    expect((await exited).signal).toBe('SIGKILL')
    const cp = await checkpoint()
    expect(cp).toMatchObject({ state: 'running' })
    expect(cp!.rows).toBeLessThan(ROWS)

    const resumed = await shardctl('backfill', '--json')
    expect(resumed.code, resumed.stderr).toBe(0)
    const r = JSON.parse(resumed.stdout)
    expect(r.completed).toBe(true)
    expect(r.resumedFrom).not.toBeNull()
    // Resumed, not restarted: it copied what was left plus at most the chunk in flight.
    expect(r.rowsCopied).toBeLessThan(ROWS)
    expect(r.rowsCopied).toBeGreaterThanOrEqual(ROWS - cp!.rows)

    for (const dim of ['user', 'merchant'] as const) expect(await dimensionCounts(dim)).toEqual({ rows: ROWS, distinct: ROWS })
    const v = await shardctl('verify', '--json')
    expect(v.code, v.stderr).toBe(0)
    expect(JSON.parse(v.stdout).clean).toBe(true)
  }, 240_000)

  it('SIGINT stops at a checkpoint with exit 130; the same command finishes', async () => {
    await emptyShards()
    // The last test's checkpoint must not satisfy the wait below before this run has even started
    // (a SIGINT before the CLI installed its handler ends it with no exit code).
    await rt.control().query(`DELETE FROM ${qualified(config.control.database, 'backfill_checkpoint')}`)
    const child = spawn(process.execPath, cliArgs(['backfill', '--restart', '--chunk-size', '500', '--max-rows-per-second', '15000']), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()))
    const exited = exitOf(child)
    await waitForCheckpoint(10_000)
    child.kill('SIGINT')
    expect((await exited).code).toBe(130)
    expect(out).toContain('stopped at a checkpoint')
    const cp = await checkpoint()
    expect(cp).toMatchObject({ state: 'running' })
    // Stopped at a checkpoint: every row up to it is in both dimensions.
    const [[n]] = await rt.legacy().query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(config.legacy.database, config.legacy.table)} WHERE order_id <= ?`, [cp!.lastPk])
    expect((await dimensionCounts('user')).rows).toBeGreaterThanOrEqual(Number(n!.n))

    const done = await shardctl('backfill', '--json')
    expect(done.code, done.stderr).toBe(0)
    expect(JSON.parse(done.stdout).completed).toBe(true)
    for (const dim of ['user', 'merchant'] as const) expect(await dimensionCounts(dim)).toEqual({ rows: ROWS, distinct: ROWS })
  }, 240_000)
})
