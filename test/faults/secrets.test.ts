/**
 * The MySQL password never reaches output or logs. A user with a password
 * full of URL-special characters is created for this test's databases; the
 * config carries it inline in the URLs (percent-encoded) and as `${VAR}`.
 * shardctl runs through success and failure paths (config check/show, provision,
 * route, backfill, verify, dualwrite status, cutover status, a wrong password,
 * an unreachable host, --debug, debug log level) and the order service starts,
 * serves, fails to start with a wrong password and logs at debug level. Every
 * byte of stdout, stderr and log file is searched for the password in raw,
 * URL-encoded and base64 forms, and for the wrong password too.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { finished, spawnTs, startService } from '../../examples/demo/processes.js'
import { buildConfig } from '../../src/config/init.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testMysqlUrl, testPrefix, testRedisUrl } from '../support/db.js'
import { parseConfig } from '../../src/config/schema.js'
import { quoteIdent } from '../../src/index.js'
import { deleteRedisKeys } from '../integration/cutover-support.js'

const prefix = testPrefix('secrets')
const user = `sk_${randomBytes(5).toString('hex')}`
// URL-special characters, so the encoded and the raw form differ.
const password = `Pw:${randomBytes(9).toString('hex')}@/%!#?`
const wrongPassword = `Wr:${randomBytes(9).toString('hex')}@/%`
const dir = mkdtempSync(join(tmpdir(), 'shardkit-secrets-'))
const root = join(import.meta.dirname, '..', '..')
const server = new URL(testMysqlUrl())
const hostPort = `${server.hostname}:${server.port || 3306}`
const urlWith = (pw: string, hp = hostPort) => `mysql://${user}:${encodeURIComponent(pw)}@${hp}`
const admin = adminPool()
const keyPrefix = `${prefix.replace(/_$/, '')}:`

function configFile(name: string, url: string): string {
  const raw = buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000', shardHosts: [url], databasesPerHost: 2, prefix, redisUrl: testRedisUrl(), redisKeyPrefix: keyPrefix })
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(raw, null, 2), { mode: 0o600 })
  return path
}
const inline = configFile('inline.json', urlWith(password))
const viaEnv = configFile('env.json', `mysql://${user}:\${SK_SECRET_TEST_PW}@${hostPort}`)
const wrong = configFile('wrong.json', urlWith(wrongPassword))
const unreachable = configFile('unreachable.json', urlWith(password, '127.0.0.1:1'))
const env = { ...process.env, SK_SECRET_TEST_PW: password, SHARDKIT_LOG_LEVEL: 'debug', SHARDKIT_ACTOR: 'secrets-test' }

/** Everything any run printed or logged. */
const captured: Array<{ what: string; text: string }> = []

function shardctl(cfg: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', cfg, ...args], { cwd: root, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const r = { code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }
      captured.push({ what: `shardctl -c ${cfg} ${args.join(' ')} (exit ${r.code})`, text: `${stdout}\n${stderr}` })
      resolve(r)
    })
  })
}

beforeAll(async () => {
  await admin.query(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [user, password])
  await admin.query(`GRANT ALL PRIVILEGES ON ${quoteIdent(`${prefix.replaceAll('_', '\\_')}%`)}.* TO ?@'127.0.0.1'`, [user])
  await createLegacyTable(parseConfig(JSON.parse(readFileSync(inline, 'utf8')), {}))
}, 60_000)

afterAll(async () => {
  await admin.query(`DROP USER IF EXISTS ?@'127.0.0.1'`, [user])
  await admin.end()
  await deleteRedisKeys(keyPrefix).catch(() => undefined)
  await dropPrefixedDatabases(prefix)
  rmSync(dir, { recursive: true, force: true })
})

/** Each form the password could leak in. */
function forms(pw: string): string[] {
  return [pw, encodeURIComponent(pw), encodeURI(pw), pw.replace(/[@/:]/g, (c) => encodeURIComponent(c)), pw.slice(3, 21), Buffer.from(pw).toString('base64'), Buffer.from(pw).toString('hex')]
}

describe('the MySQL password never appears in output or logs', () => {
  it('shardctl on the success paths (inline and ${VAR} configs)', async () => {
    for (const cfg of [inline, viaEnv]) {
      expect((await shardctl(cfg, 'config', 'check', '--json')).code).toBe(0)
      expect((await shardctl(cfg, 'config', 'show', '--json')).code).toBe(0)
      expect((await shardctl(cfg, 'config', 'show')).code).toBe(0)
    }
    const p = await shardctl(inline, 'provision', '--json')
    expect(p.code, p.stderr).toBe(0)
    expect((await shardctl(viaEnv, 'route', '--user', '42', '--json')).code).toBe(0)
    expect((await shardctl(inline, 'route', '--user', '42')).code).toBe(0)
    expect((await shardctl(inline, 'cutover', 'status', '--json')).code).toBe(0)
    expect((await shardctl(inline, 'cutover', 'advance', '--reason', 'secrets test', '--json', '--debug')).code).toBe(0)
    expect((await shardctl(viaEnv, 'dualwrite', 'status', '--json')).code).toBe(0)
    const b = await shardctl(inline, 'backfill', '--json', '--debug')
    expect(b.code, b.stderr).toBe(0)
    expect((await shardctl(viaEnv, 'verify', '--json')).code).toBe(0)
    expect((await shardctl(viaEnv, 'verify')).code).toBe(0)
  }, 180_000)

  it('shardctl on the failure paths (wrong password, unreachable host, --debug stacks)', async () => {
    for (const args of [['dualwrite', 'status'], ['provision', '--debug'], ['cutover', 'status', '--debug'], ['verify', '--debug', '--json'], ['backfill', '--debug']]) {
      const r = await shardctl(wrong, ...args)
      // `cutover status` reports an unreachable database in its output rather than failing;
      // `dualwrite status` prints what it could read and exits 1 (its total would be a lower bound).
      if (args[0] !== 'cutover') expect(r.code, `${args.join(' ')}: ${r.stderr}`).not.toBe(0)
      expect(r.stderr.length + r.stdout.length).toBeGreaterThan(0)
    }
    for (const args of [['route', '--user', '42', '--debug'], ['dualwrite', 'status', '--debug'], ['config', 'check', '--json']]) {
      const r = await shardctl(unreachable, ...args)
      captured.push({ what: 'unreachable', text: r.stderr })
    }
    // A config whose ${VAR} is missing names the variable, not a value.
    const missing = await new Promise<string>((resolve) => execFile(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', viaEnv, 'config', 'check'], { cwd: root, env: { ...env, SK_SECRET_TEST_PW: undefined } }, (_e, so, se) => resolve(`${so}\n${se}`)))
    captured.push({ what: 'missing var', text: missing })
    expect(missing).toContain('SK_SECRET_TEST_PW')
  }, 180_000)

  it('the order service: start, serve, debug logs, and a start with the wrong password', async () => {
    const log = join(dir, 'service.log')
    process.env.SK_SECRET_TEST_PW = password // startService passes this process's environment on
    const svc = await startService(viaEnv, `${prefix}svc`, log, 60_000, ['--log-level', 'debug'])
    let stdout = ''
    svc.child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
    const res = await fetch(`${svc.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: '42', merchant_id: '7', total_cents: 100, items: [{ sku: 'A', qty: 1, price_cents: 100 }] }) })
    expect(res.status).toBe(201)
    await fetch(`${svc.url}/orders/1`)
    expect(await svc.stop()).toBe(0)
    delete process.env.SK_SECRET_TEST_PW
    captured.push({ what: 'service log', text: `${readFileSync(log, 'utf8')}\n${stdout}` })
    expect(readFileSync(log, 'utf8').length).toBeGreaterThan(0)

    const bad = spawnTs('examples/order-service/main.ts', ['--config', wrong, '--port', '0', '--log-level', 'debug'], { env })
    const timer = setTimeout(() => bad.kill('SIGTERM'), 30_000)
    const r = await finished(bad)
    clearTimeout(timer)
    expect(r.code).not.toBe(0)
    captured.push({ what: 'service with wrong password', text: `${r.stdout}\n${r.stderr}` })
  }, 120_000)

  it('no capture contains the password or the wrong password in any form', () => {
    expect(captured.length).toBeGreaterThan(20)
    const all = captured.map((c) => c.text).join('\n')
    expect(all).toContain(user) // the searched text is real output, naming the user
    for (const c of captured) {
      for (const f of [...forms(password), ...forms(wrongPassword)]) {
        expect(c.text.includes(f), `${c.what} contains ${JSON.stringify(f)}:\n${c.text.slice(Math.max(0, c.text.indexOf(f) - 300), c.text.indexOf(f) + 100)}`).toBe(false)
      }
    }
  })
})
