/**
 * Notifications: a URL gets a JSON POST, a command gets the JSON on stdin;
 * each attempt is bounded and retried, and a hook that fails never fails the
 * operation (it is logged). Through the CLI: a stage change, a guard
 * refusal, a verify with differences and a finished backfill each notify.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { PassThrough } from 'node:stream'
import type { RowDataPacket } from 'mysql2/promise'
import { createNotifier, type NotifyEvent } from '../../src/notify/notifier.js'
import { parseConfig } from '../../src/config/schema.js'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { qualified } from '../../src/runtime/mysql.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { testFleetRaw } from '../support/db.js'
import { setupFleet, until, walkTo, type Fleet } from './cutover-support.js'
import { shardctlInProcess, writeConfigFile } from './operator-support.js'

/** A hook endpoint that answers `plan` codes in turn (then 200), recording every body. */
async function hookServer(plan: number[] = []): Promise<{ url: string; bodies: NotifyEvent[]; hits: number; server: Server }> {
  const state = { url: '', bodies: [] as NotifyEvent[], hits: 0, server: undefined as unknown as Server }
  state.server = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      state.hits++
      const code = plan.shift() ?? 200
      if (code === 0) return // never answers
      if (code === 200) state.bodies.push(JSON.parse(body) as NotifyEvent)
      res.writeHead(code).end()
    })
  })
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', () => r()))
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/hook?token=s3cret-token`
  return state
}

function capturingLogger() {
  const out = new PassThrough()
  let text = ''
  out.on('data', (c: Buffer) => (text += c.toString()))
  return { logger: pino({ level: 'debug' }, out), text: () => text }
}

describe('the notifier', () => {
  it('POSTs the event as JSON, retrying a failing endpoint', async () => {
    const h = await hookServer([500, 503])
    try {
      const n = createNotifier({ url: h.url, timeoutMs: 2_000, retries: 3, throttledMinutes: 30 }, undefined, { backoffMs: 10 })
      const r = await n.send('stage-changed', 'cutover advance: a -> b', { version: 3 }, 'dba')
      expect(r).toEqual({ sent: true, attempts: 3 })
      expect(h.bodies).toHaveLength(1)
      expect(h.bodies[0]).toMatchObject({ schemaVersion: 1, kind: 'stage-changed', summary: 'cutover advance: a -> b', actor: 'dba', details: { version: 3 } })
      expect(Date.parse(h.bodies[0]!.at)).toBeGreaterThan(Date.now() - 60_000)
    } finally {
      h.server.close()
    }
  })

  it('is bounded: an endpoint that never answers costs at most its attempts, is logged without its token, and never throws', async () => {
    const h = await hookServer([0, 0, 0])
    const log = capturingLogger()
    try {
      const n = createNotifier({ url: h.url, timeoutMs: 300, retries: 1, throttledMinutes: 30 }, log.logger, { backoffMs: 10 })
      const t0 = performance.now()
      const r = await n.send('backfill-failed', 'x')
      const took = performance.now() - t0
      expect(r.sent).toBe(false)
      expect(r.attempts).toBe(2)
      expect(r.error).toContain('300 ms')
      expect(took).toBeGreaterThanOrEqual(600)
      expect(took).toBeLessThan(2_000)
      expect(log.text()).toContain('notification failed after 2 attempt(s)')
      expect(log.text()).not.toContain('s3cret-token')
    } finally {
      h.server.closeAllConnections()
      h.server.close()
    }
  })

  it('runs a command with the JSON on stdin; a failing command is reported, not thrown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardkit-notify-'))
    const file = join(dir, 'event.json')
    const ok = createNotifier({ command: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(file)}, require('fs').readFileSync(0))`], timeoutMs: 5_000, retries: 0, throttledMinutes: 30 })
    expect(await ok.send('verify-differences', 'verify found 2 differing rows', { differences: 2 })).toEqual({ sent: true, attempts: 1 })
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ kind: 'verify-differences', details: { differences: 2 } })
    const bad = createNotifier({ command: [process.execPath, '-e', 'process.stderr.write("pager down"); process.exit(3)'], timeoutMs: 5_000, retries: 1, throttledMinutes: 30 }, undefined, { backoffMs: 10 })
    const r = await bad.send('guard-refused', 'x')
    expect(r).toMatchObject({ sent: false, attempts: 2 })
    expect(r.error).toContain('exit 3')
    expect(r.error).toContain('pager down')
    const missing = createNotifier({ command: ['/nonexistent/pager'], timeoutMs: 1_000, retries: 0, throttledMinutes: 30 })
    expect((await missing.send('guard-refused', 'x')).error).toBe('ENOENT')
  })

  it('the config refuses a notify section that names no target', () => {
    const raw = testFleetRaw({ prefix: 'skt_notifycfg_000000_' }) as Record<string, unknown>
    expect(() => parseConfig({ ...raw, notify: { timeoutMs: 1000 } }, {})).toThrow(/notify: names neither "url" nor "command"/)
    expect(() => parseConfig({ ...raw, notify: { url: 'ftp://x' } }, {})).toThrow(/notify\.url/)
    expect(parseConfig({ ...raw, notify: { url: 'https://hooks.example/x?t=${T}' } }, { T: 'abc' }).notify).toMatchObject({ url: 'https://hooks.example/x?t=abc', retries: 3, timeoutMs: 5000 })
  })
})

describe('the CLI notifies', () => {
  let fleet: Fleet
  let hook: Awaited<ReturnType<typeof hookServer>>
  let configPath: string
  let deadHookConfig: string
  beforeAll(async () => {
    fleet = await setupFleet('notifycli')
    await generateOrders(fleet.rt.legacy(), { database: fleet.config.legacy.database, table: fleet.config.legacy.table, rows: 400, seed: 9 })
    hook = await hookServer()
    const raw = testFleetRaw({ prefix: fleet.prefix }) as Record<string, unknown>
    configPath = writeConfigFile({ ...raw, notify: { url: hook.url, timeoutMs: 2_000, retries: 1 } })
    deadHookConfig = writeConfigFile({ ...raw, notify: { url: 'http://127.0.0.1:9/hook', timeoutMs: 300, retries: 1 } })
  })
  afterAll(async () => {
    hook?.server.close()
    await fleet?.cleanup()
  })

  it('on a stage change, a finished backfill, a verify with differences and a guard refusal', async () => {
    expect((await shardctlInProcess(configPath, ['cutover', 'advance'])).code).toBe(0)
    await until(() => hook.bodies.some((b) => b.kind === 'stage-changed'), 5_000, 'stage-changed')
    expect(hook.bodies.find((b) => b.kind === 'stage-changed')).toMatchObject({ actor: 'operator-test', summary: expect.stringContaining('legacy (v0) -> dual-write (v1)') })

    expect((await shardctlInProcess(configPath, ['backfill'])).code).toBe(0)
    expect(hook.bodies.find((b) => b.kind === 'backfill-finished')).toMatchObject({ details: { rowsTotal: 400 } })

    const [[row]] = await fleet.rt.legacy().query<RowDataPacket[]>(`SELECT order_id, merchant_id FROM ${qualified(fleet.config.legacy.database, fleet.config.legacy.table)} LIMIT 1`)
    const p = fleet.config.dimensions.merchant.shards[shardOfKey(String(row!.merchant_id))]!
    await fleet.rt.host(p.host).query(`DELETE FROM ${qualified(p.database, p.table)} WHERE order_id = ?`, [row!.order_id])
    expect((await shardctlInProcess(configPath, ['verify', '--rounds', '1'])).code).toBe(4)
    expect(hook.bodies.find((b) => b.kind === 'verify-differences')).toMatchObject({ details: { differences: expect.any(Number) } })

    expect((await shardctlInProcess(configPath, ['cutover', 'advance'])).code).toBe(3)
    expect(hook.bodies.find((b) => b.kind === 'guard-refused')?.summary).toContain('refused at dual-write')
  })

  it('a hook that fails never fails the operation: the move is made and the failure logged', async () => {
    await walkTo(fleet.rt, 'shadow-read')
    const r = await shardctlInProcess(deadHookConfig, ['cutover', 'rollback'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('rollback shadow-read')
    expect(r.stderr).toContain('notification failed after 2 attempt(s)')
  })
})
