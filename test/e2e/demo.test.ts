/**
 * The rehearsal (`npm run demo`) at small scale, as a child process, on the
 * test servers: it must walk legacy -> shards with zero failed requests,
 * clean verifies, every acknowledged order exactly once per dimension, and
 * remove what it created.
 */
import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import type { RehearsalReport } from '../../examples/demo/rehearsal.js'
import { REPO_ROOT } from '../../examples/demo/processes.js'
import { adminPool, testMysqlUrl, testRedisUrl } from '../support/db.js'

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, SHARDKIT_DEMO_MYSQL_URL: testMysqlUrl(), SHARDKIT_DEMO_REDIS_URL: testRedisUrl() },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  return new Promise((res) => child.on('close', (code) => res({ code, stdout, stderr })))
}

describe('npm run demo (small scale)', () => {
  it('walks the migration under load with no failed request, clean verifies, and every order exactly once', async () => {
    const r = await runDemo(['--orders', '3000', '--rps', '30', '--json'])
    let report: RehearsalReport
    try {
      report = JSON.parse(r.stdout) as RehearsalReport
    } catch {
      throw new Error(`the demo printed no JSON report (exit ${r.code}):\n${r.stderr.slice(-3000)}`)
    }
    expect(report.problems, r.stderr.slice(-3000)).toEqual([])
    expect(r.code).toBe(0)
    expect(report.ok).toBe(true)
    expect(report.steps.map((s) => s.step)).toEqual(
      expect.arrayContaining(['cutover advance -> dual-write', 'backfill', 'cutover advance -> write-shards', 'cutover advance -> shards', 'verify (final, traffic stopped)']),
    )
    expect(report.steps.every((s) => s.ok)).toBe(true)
    expect(report.load!.errors).toBe(0)
    expect(report.load!.requests).toBeGreaterThan(100)
    expect(report.verifies.length).toBeGreaterThanOrEqual(8)
    expect(report.verifies.every((v) => v.clean)).toBe(true)
    expect(report.fenceMs).not.toBeNull()
    expect(report.presence!.ok).toBe(true)
    expect(report.presence!.acknowledged).toBe(report.load!.created)
    for (const d of report.presence!.dimensions) expect(d.exactlyOnce).toBe(report.load!.created)
    expect(report.removed!.databases).toBeGreaterThanOrEqual(10)

    const pool = adminPool()
    try {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${report.prefix.replaceAll('_', '\\_')}%`])
      expect(Number(rows[0]!.n)).toBe(0)
    } finally {
      await pool.end()
    }
  }, 300_000)

  it('refuses a bad argument with exit 2, naming it, creating nothing', async () => {
    const r = await runDemo(['--orders', 'lots'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--orders')
  }, 60_000)
})
