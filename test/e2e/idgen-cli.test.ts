/**
 * The built CLI as a child process: `shardctl id new` / `shardctl id decode`.
 * Needs `npm run build` first (the `test` script does it).
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { buildConfig } from '../../src/config/init.js'
import { decodeId } from '../../src/idgen/layout.js'
import { LEASE_TABLE } from '../../src/idgen/lease.js'
import { qualified } from '../../src/runtime/mysql.js'
import { adminPool, dropPrefixedDatabases, testMysqlUrl, testPrefix } from '../support/db.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(ROOT, 'dist/bin/shardctl.js')
const prefix = testPrefix('idgencli')
const controlUrl = (db: string): string => {
  const u = new URL(testMysqlUrl())
  u.pathname = `/${db}`
  return u.toString()
}
let cwd: string
const env: Record<string, string | undefined> = { ...process.env, SHARDKIT_CONFIG: undefined, SHARDKIT_LOG_LEVEL: 'silent' }
delete env.SHARDKIT_CONFIG

function run(args: string[], opts: { cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? cwd, env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

async function databaseExists(db: string): Promise<boolean> {
  const pool = adminPool()
  try {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [db])
    return rows.length > 0
  } finally {
    await pool.end()
  }
}

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` before the e2e tests`)
  // A directory with no shardkit.json: `id new` must work without a config.
  cwd = mkdtempSync(join(tmpdir(), 'shardkit-idgen-e2e-'))
})
afterAll(async () => {
  if (cwd) rmSync(cwd, { recursive: true, force: true })
  await dropPrefixedDatabases(prefix)
})

describe('shardctl id new / id decode (no config file)', () => {
  it('id new --user 12345 --count 3 prints three distinct ids; id decode of each reports user shard 105', async () => {
    const db = `${prefix}control`
    const r = await run(['id', 'new', '--user', '12345', '--count', '3', '--control', controlUrl(db)])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`database ${db} (--control)`)
    const ids = r.stdout.trim().split('\n')
    expect(ids).toHaveLength(3)
    expect(new Set(ids).size).toBe(3)
    for (const id of ids) {
      expect(id).toMatch(/^[1-9][0-9]{16,18}$/)
      const d = await run(['id', 'decode', id, '--json'])
      expect(d.code, d.stderr).toBe(0)
      expect(JSON.parse(d.stdout)).toMatchObject({ id, userShard: 105 })
      const plain = await run(['id', 'decode', id])
      expect(plain.stdout).toMatch(/userShard 105/)
      expect(plain.stdout).toMatch(/time {6}20\d\d-\d\d-\d\dT/)
    }
    // The lease was given back with the last id's time as the high-water.
    const pool = adminPool()
    try {
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT reserved_until_ms, owner FROM ${qualified(db, LEASE_TABLE)} WHERE reserved_until_ms > 0`)
      expect(rows).toHaveLength(1)
      expect(rows[0]!.owner).toBe('')
      expect(Number(rows[0]!.reserved_until_ms)).toBe(decodeId(ids[2]!).timestampMs)
    } finally {
      await pool.end()
    }
  })

  it('--json prints ids as strings with the user shard and worker', async () => {
    const r = await run(['id', 'new', '--user', '9223372036854775807', '--count', '2', '--json', '--control', controlUrl(`${prefix}control`)])
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as { userId: unknown; userShard: unknown; worker: unknown; ids: unknown[] }
    expect(j.userId).toBe('9223372036854775807')
    expect(j.userShard).toBe(7)
    expect(typeof j.worker).toBe('number')
    expect(j.ids).toHaveLength(2)
    expect(j.ids.every((id) => typeof id === 'string')).toBe(true)
  })

  it('redacts the password of --control in what it prints', async () => {
    const u = new URL(controlUrl(`${prefix}never`))
    u.port = '1' // nothing listens: fails fast
    u.password = 'sup3rsecret'
    const r = await run(['id', 'new', '--user', '1', '--control', u.toString()])
    expect(r.code).toBe(1)
    expect(r.stderr + r.stdout).not.toContain('sup3rsecret')
    expect(r.stderr).toMatch(/cannot prepare the lease table .*ECONNREFUSED.*start MySQL\/MariaDB/)
  })

  it.each([
    [['id', 'new', '--user', 'abc'], /--user "abc"/],
    [['id', 'new', '--user', '1.5'], /--user "1.5"/],
    [['id', 'new', '--user', '007'], /--user "007"/],
    // Every key the router routes is accepted (BIGINT UNSIGNED, DECIMAL(20,0): issue 16); a 21-digit one is not.
    [['id', 'new', '--user', '100000000000000000000'], /--user "100000000000000000000"/],
    [['id', 'new', '--user', '5', '--count', '0'], /--count must be/],
    [['id', 'new', '--user', '5', '--count', 'x'], /--count must be/],
    [['id', 'new', '--user', '5', '--count', '1000001'], /--count must be/],
    [['id', 'new', '--user', '5', '--control', 'redis://127.0.0.1:6379'], /--control must be a mysql:\/\//],
    [['id', 'new', '--count', '3'], /--user/],
  ])('id new %j: exit 2 naming the argument, nothing created', async (args, pattern) => {
    const r = await run([...args, ...(args.includes('--control') ? [] : ['--control', controlUrl(`${prefix}never`)])])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(pattern)
    expect(r.stdout).toBe('')
    expect(await databaseExists(`${prefix}never`)).toBe(false)
  })

  it.each([
    ['0123', /leading zero/],
    ['0', /leading zero/],
    [((1n << 40n) << 22n | 120n).toString(), /shard field 120/],
    [((1n << 40n) << 22n | 127n).toString(), /shard field 127/],
    ['9223372036854775808', /above 2\^63-1/],
    ['12x', /not digits/],
  ])('id decode %s: exit 2 naming the argument', async (id, pattern) => {
    const r = await run(['id', 'decode', id])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/argument <id>/)
    expect(r.stderr).toMatch(pattern)
  })

  it('id decode -- -5: negative, exit 2', async () => {
    const r = await run(['id', 'decode', '--', '-5'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/negative/)
  })
})

describe('shardctl id new with a config file', () => {
  let dir: string
  const db = `${prefix}cfgcontrol`
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'shardkit-idgen-e2e-cfg-'))
    const raw = buildConfig({
      legacyUrl: testMysqlUrl(),
      legacyDatabase: `${prefix}legacy`,
      legacyTable: 'orders',
      idCeiling: '1000000000',
      shardHosts: [testMysqlUrl()],
      prefix: `${prefix}cfg`,
    }) as { control: { database: string } }
    raw.control.database = db
    writeFileSync(join(dir, 'shardkit.json'), JSON.stringify(raw, null, 2))
  })
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('leases from the config\'s control database and says so', async () => {
    const r = await run(['id', 'new', '--user', '12345', '--count', '2'], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`database ${db} (config ${join(dir, 'shardkit.json')})`)
    expect(r.stdout.trim().split('\n')).toHaveLength(2)
    expect(await databaseExists(db)).toBe(true)
  })

  it('refuses --control beside a config (exit 2): a second lease table could repeat the fleet\'s ids', async () => {
    const r = await run(['id', 'new', '--user', '1', '--control', controlUrl(`${prefix}never`)], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--control cannot be combined with a config file/)
  })

  it('a -c file that does not exist is exit 2, not a silent fallback', async () => {
    const r = await run(['-c', join(dir, 'missing.json'), 'id', 'new', '--user', '1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no config file at .*missing\.json/)
  })
})
