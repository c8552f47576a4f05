/**
 * The status page in a real browser (Debian's chromium, driven by
 * playwright-core) against `shardctl serve` running as its own process on a
 * fleet mid-migration:
 *
 * - the heatmap's counts per state equal `status --json`;
 * - a `cutover advance` shows on the page within 2 s;
 * - the page works on a narrow screen (12 x 10 per dimension, no sideways scroll);
 * - `/metrics` parses as Prometheus text and carries the fleet's series;
 * - the STALE banner appears when `serve` loses its control database;
 * - a screenshot is written to docs/status-page.png.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { RowDataPacket } from 'mysql2/promise'
import { generateOrders } from '../../fixtures/generate-orders.js'
import { qualified } from '../../src/runtime/mysql.js'
import { shardOfKey } from '../../src/router/shard-function.js'
import { SHARD_STATES, type StatusDocument } from '../../src/status/document.js'
import { testFleetRaw, testMysqlUrl } from '../support/db.js'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { setupFleet, until, walkTo, type Fleet } from '../integration/cutover-support.js'
import { parseMetrics, sampleValue, shardctlInProcess, writeConfigFile } from '../integration/operator-support.js'

const CHROMIUM = '/usr/bin/chromium'
const ROWS = 3000
const root = join(import.meta.dirname, '..', '..')
let fleet: Fleet
let configPath: string
let serveConfig: string
let proxy: TcpProxy
let serve: ChildProcess | undefined
let url: string
let browser: BrowserContext
let page: Page
const profile = mkdtempSync(join(tmpdir(), 'shardkit-chromium-'))

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does it`)
  fleet = await setupFleet('statuspage')
  await generateOrders(fleet.rt.legacy(), { database: fleet.config.legacy.database, table: fleet.config.legacy.table, rows: ROWS, seed: 3 })
  const raw = testFleetRaw({ prefix: fleet.prefix }) as { control: { url: string } }
  configPath = writeConfigFile(raw)
  // serve reaches its control database through a proxy the test can cut.
  const u = new URL(testMysqlUrl())
  proxy = await startTcpProxy({ targetHost: u.hostname, targetPort: Number(u.port || 3306) })
  const cu = new URL(raw.control.url)
  cu.hostname = '127.0.0.1'
  cu.port = String(proxy.port)
  serveConfig = writeConfigFile({ ...raw, control: { ...raw.control, url: cu.toString().replace(/\/$/, '') } })

  // Mid-migration: backfilled, verified with one difference left in one user shard.
  await walkTo(fleet.rt, 'dual-write')
  expect((await shardctlInProcess(configPath, ['backfill', '--json'])).code).toBe(0)
  const [[row]] = await fleet.rt.legacy().query<RowDataPacket[]>(`SELECT order_id, user_id FROM ${qualified(fleet.config.legacy.database, fleet.config.legacy.table)} ORDER BY order_id LIMIT 1 OFFSET 1234`)
  const p = fleet.config.dimensions.user.shards[shardOfKey(String(row!.user_id))]!
  await fleet.rt.host(p.host).query(`DELETE FROM ${qualified(p.database, p.table)} WHERE order_id = ?`, [row!.order_id])
  expect((await shardctlInProcess(configPath, ['verify', '--rounds', '1'])).code).toBe(4)

  serve = spawn(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', serveConfig, 'serve', '--listen', '127.0.0.1:0', '--interval', '500ms'], {
    cwd: root,
    env: { ...process.env, SHARDKIT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  serve.stderr!.on('data', (c: Buffer) => (err += c.toString()))
  url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 30_000)
    serve!.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /\{"listening":"([^"]+)"/.exec(out)
      if (m) {
        clearTimeout(t)
        resolve(m[1]!)
      }
    })
  })
  // A fresh profile directory (playwright passes it as --user-data-dir); never a downloaded browser.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  page = browser.pages()[0] ?? (await browser.newPage())
  // Nothing may be loaded from outside this machine.
  page.on('request', (r) => {
    if (!r.url().startsWith(url)) throw new Error(`the page requested ${r.url()}`)
  })
})

afterAll(async () => {
  await browser?.close()
  if (serve && serve.exitCode === null) {
    serve.kill('SIGTERM')
    await new Promise((r) => serve!.once('exit', r))
  }
  await fleet?.cleanup()
  await proxy?.close()
  rmSync(profile, { recursive: true, force: true })
})

async function statusJson(): Promise<StatusDocument> {
  const r = await shardctlInProcess(configPath, ['status', '--json'])
  expect(r.code, r.stderr).toBe(0)
  return r.json as StatusDocument
}

describe('the status page in chromium', () => {
  it('shows the heatmap with the same counts per state as status --json', async () => {
    await page.goto(`${url}/`)
    await page.locator('#heat-user .cell').nth(119).waitFor()
    const d = await statusJson()
    for (const s of SHARD_STATES) {
      expect(Number(await page.locator(`[data-count="${s}"]`).textContent()), s).toBe(d.shards.counts.all[s])
      expect(await page.locator(`.grid .cell[data-state="${s}"]`).count(), s).toBe(d.shards.counts.all[s])
    }
    expect(d.shards.counts.all.mismatch).toBe(1)
    expect(d.shards.counts.all.verified).toBe(239)
    expect(await page.locator('#heat-merchant .cell').count()).toBe(120)
    // A glyph per state, so it reads in grayscale; a hover with the figures.
    const bad = page.locator('.grid .cell[data-state="mismatch"]')
    expect(await bad.textContent()).toBe('!')
    expect(await bad.getAttribute('title')).toContain('differences 1')
    await bad.hover()
    expect(await page.locator('#hover').textContent()).toContain('mismatch')
    expect(await page.locator('#stale').isHidden()).toBe(true)
  })

  it('a cutover advance shows on the page within 2 s', async () => {
    expect(await page.locator('#stage-name').getAttribute('data-stage')).toBe('dual-write')
    const r = await shardctlInProcess(configPath, ['cutover', 'advance', '--force', '--reason', 'browser test: the verify difference is on purpose'])
    expect(r.code, r.stderr).toBe(0)
    const t0 = performance.now()
    await page.locator('#stage-name[data-stage="shadow-read"]').waitFor({ timeout: 2_000 })
    const seen = performance.now() - t0
    expect(seen).toBeLessThan(2_000)
    expect(await page.locator('#stepper li.current').textContent()).toBe('shadow-read')
    // The screenshot once the move has committed (while it runs, the page shows its run lock).
    await until(async () => ((await page.locator('#runlock').textContent()) ?? '').includes('no cutover move'), 5_000, 'the move to finish on the page')
    await page.screenshot({ path: join(root, 'docs', 'status-page.png'), fullPage: true })
  })

  it('works on a narrow screen: each row of 120 wraps into 12 x 10, nothing scrolls sideways', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    const box0 = await page.locator('#heat-user .cell').nth(0).boundingBox()
    const box11 = await page.locator('#heat-user .cell').nth(11).boundingBox()
    const box12 = await page.locator('#heat-user .cell').nth(12).boundingBox()
    expect(box11!.y).toBe(box0!.y)
    expect(box12!.y).toBeGreaterThan(box0!.y)
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390)
    await page.setViewportSize({ width: 1400, height: 1000 })
  })

  it('serves /api/status, /metrics (Prometheus text) and /healthz, and refuses changes', async () => {
    const api = (await (await fetch(`${url}/api/status`)).json()) as StatusDocument
    expect(api.schemaVersion).toBe(1)
    expect(api.stage.stage).toBe('shadow-read')
    const m = await parseMetrics(await (await fetch(`${url}/metrics`)).text())
    expect(sampleValue(m, 'shardkit_fleet_stage_version')).toBe(api.stage.version)
    expect(sampleValue(m, 'shardkit_fleet_stage', { stage: 'shadow-read' })).toBe(1)
    expect(sampleValue(m, 'shardkit_backfill_rows', { kind: 'total' })).toBe(ROWS)
    expect(sampleValue(m, 'shardkit_backfill_progress_ratio')).toBe(1)
    expect(sampleValue(m, 'shardkit_shards', { dimension: 'user', state: 'mismatch' })).toBe(1)
    const perDim = m.get('shardkit_shards')!.metrics.filter((x) => x.labels?.dimension === 'merchant').reduce((n, x) => n + Number(x.value), 0)
    expect(perDim).toBe(120)
    expect(sampleValue(m, 'shardkit_verify_differences', { pair: 'legacy-user' })).toBe(1)
    expect(sampleValue(m, 'shardkit_source_up', { source: 'control-db' })).toBe(1)
    expect(sampleValue(m, 'shardkit_fleet_journal_depth', { primary: 'legacy' })).toBe(0)
    expect(m.get('shardkit_fleet_stage_version')!.type).toBe('GAUGE')
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect((await fetch(`${url}/api/status`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${url}/api/pause`, { method: 'POST' })).status).toBe(405)
  })

  it('shows STALE once serve loses its control database, and recovers', async () => {
    const t0 = performance.now()
    proxy.cut()
    await page.locator('#stale[data-stale="true"]').waitFor({ timeout: 10_000 })
    // The data was up to one interval old at the cut: the banner shows once it is three intervals old.
    expect(performance.now() - t0).toBeGreaterThan(2 * 500)
    expect(await page.locator('#stale').textContent()).toContain('STALE')
    expect(await page.locator('#stale-why').textContent()).toContain('control database')
    // The last good picture stays on screen under the banner.
    expect(await page.locator('#stage-name').getAttribute('data-stage')).toBe('shadow-read')
    proxy.restore()
    await page.locator('#stale[data-stale="false"]').waitFor({ state: 'attached', timeout: 15_000 })
  })
})

describe('shardctl serve refuses what it must', () => {
  it('a non-loopback address without a token exits 2 naming --token', async () => {
    const r = await shardctlInProcess(configPath, ['serve', '--listen', '0.0.0.0:0'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--token')
  })

  it('with a token, the data routes need it and the page passes it on', async () => {
    await until(() => true, 1, 'nothing')
    const { startStatusServer } = await import('../../src/serve/server.js')
    const token = 'test-token-0123456789abcdef'
    const s = await startStatusServer(fleet.rt, { listen: '127.0.0.1:0', token, intervalMs: 500 })
    try {
      expect((await fetch(`${s.url}/api/status`)).status).toBe(401)
      expect((await fetch(`${s.url}/api/status`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
      expect((await fetch(`${s.url}/metrics?token=wrong-token-0123456789abc`)).status).toBe(401)
      const p = await browser.newPage()
      await p.goto(`${s.url}/?token=${token}`)
      await p.locator('#heat-user .cell').nth(119).waitFor({ timeout: 10_000 })
      await p.close()
    } finally {
      await s.close()
    }
  })
})
