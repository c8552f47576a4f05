import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openRuntime } from '../../src/runtime/runtime.js'
import { provision } from '../../src/provision/provision.js'
import { acquireRunLock } from '../../src/cutover/switch-store.js'
import { parseConfig } from '../../src/config/schema.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetRaw, testPrefix } from '../support/db.js'
import { deleteRedisKeys } from '../integration/cutover-support.js'

const prefix = testPrefix('cocli')
const dir = mkdtempSync(join(tmpdir(), 'shardkit-cutover-cli-'))
const configPath = join(dir, 'shardkit.json')
const root = join(import.meta.dirname, '..', '..')
const raw = testFleetRaw({ prefix })
const config = parseConfig(raw, {})

// The built CLI (`npm test` builds first), as an operator runs it: it starts in half the time of
// tsx, and this test starts 15 of them (with tsx it took 45-51 s of its 60 s beside one busy loop
// and timed out beside two).
const BIN = join(root, 'dist', 'bin', 'shardctl.js')

function shardctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, '-c', configPath, ...args], { cwd: root, env: { ...process.env, SHARDKIT_ACTOR: 'e2e-dba', SHARDKIT_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify(raw, null, 2))
  await createLegacyTable(config)
  const rt = openRuntime(config)
  try {
    await provision(rt)
  } finally {
    await rt.close()
  }
})

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await deleteRedisKeys(config.redis.keyPrefix)
  await dropPrefixedDatabases(prefix)
})

describe('shardctl cutover', () => {
  it('status, dry run, usage errors, advance, guard refusal (exit 3), --force, lock (exit 5), rollback, history', async () => {
    const st = await shardctl('cutover', 'status', '--json')
    expect(st.code, st.stderr).toBe(0)
    expect(JSON.parse(st.stdout).state).toMatchObject({ stage: 'legacy', version: 0 })

    const dry = await shardctl('cutover', 'advance', '--dry-run')
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain('would raise-fences')
    expect(JSON.parse((await shardctl('cutover', 'status', '--json')).stdout).state.version).toBe(0)

    expect((await shardctl('cutover', 'advance', '--force')).code).toBe(2)
    const badPct = await shardctl('cutover', 'advance', '--percent', '0')
    expect(badPct.code).toBe(2)
    expect(badPct.stderr).toContain('--percent')

    const adv = await shardctl('cutover', 'advance', '--json')
    expect(adv.code, adv.stderr).toBe(0)
    expect(JSON.parse(adv.stdout)).toMatchObject({ outcome: 'done', to: { stage: 'dual-write', version: 1 } })

    // No backfill has run here: the guards refuse, every reason on stderr, exit 3.
    const refused = await shardctl('cutover', 'advance')
    expect(refused.code).toBe(3)
    expect(refused.stderr).toContain('refused')
    expect(refused.stdout).toContain('REFUSED')

    const forced = await shardctl('cutover', 'advance', '--force', '--reason', 'e2e: forced on purpose')
    expect(forced.code, forced.stderr).toBe(0)
    expect(forced.stdout).toContain('forced (recorded)')

    const rt = openRuntime(config)
    try {
      const lock = await acquireRunLock(rt, 'other-dba')
      try {
        const busy = await shardctl('cutover', 'rollback')
        expect(busy.code).toBe(5)
        expect(busy.stderr).toContain('other-dba')
      } finally {
        await lock.release()
      }
    } finally {
      await rt.close()
    }

    expect((await shardctl('cutover', 'rollback')).code).toBe(0)
    expect((await shardctl('cutover', 'rollback')).code).toBe(0)
    const status = await shardctl('cutover', 'status')
    expect(status.stdout).toMatch(/stage\s+legacy \(v4\)/)

    const h = await shardctl('cutover', 'history', '--json')
    expect(h.code).toBe(0)
    const rows = JSON.parse(h.stdout) as { action: string; outcome: string; forced: boolean; actor: string; to: { stage: string } | null }[]
    expect(rows.map((r) => `${r.action}:${r.outcome}:${r.to?.stage ?? '-'}`)).toEqual(['rollback:done:legacy', 'rollback:done:dual-write', 'advance:done:shadow-read', 'advance:refused:-', 'advance:done:dual-write'])
    expect(rows[2]).toMatchObject({ forced: true, actor: 'e2e-dba' })
    const text = await shardctl('cutover', 'history')
    expect(text.stdout).toContain('FORCED(')
  }, 180_000)
})
