/**
 * `npm run bench:dualwrite`: inserts through the dual-write store at
 * `legacy`, `dual-write` and `write-shards`, beside the same INSERT through a
 * bare mysql2 pool, in one run on the local server. Prints p50/p99 latency
 * (sequential, one client) and inserts/s (concurrent clients), the ratio of
 * each to the bare insert (target: dual-write p50 within 2.5x), and the
 * server settings. Creates its own `skb_dualwrite_*` databases and drops them.
 *
 * Env: BENCH_MYSQL_URL (default mysql://root@127.0.0.1:3306), BENCH_N
 * (inserts per mode per round, default 400), BENCH_ROUNDS (default 3),
 * BENCH_CONCURRENCY (default 8).
 */
import { randomBytes } from 'node:crypto'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { buildConfig } from '../src/config/init.js'
import { parseConfig } from '../src/config/schema.js'
import type { Stage, StageState } from '../src/cutover/stages.js'
import { DualWriteStore } from '../src/dualwrite/store.js'
import { primaryDatabases } from '../src/dualwrite/placement.js'
import { provision } from '../src/provision/index.js'
import { createMysqlPool, qualified, quoteIdent } from '../src/runtime/mysql.js'
import { openRuntime } from '../src/runtime/runtime.js'
import { legacyOrdersDDL } from '../fixtures/legacy-schema.js'
import { benchOrderRows, percentile } from './support/order-rows.js'

const url = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
const N = Number(process.env.BENCH_N ?? 400)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)
const prefix = `skb_dualwrite_${randomBytes(3).toString('hex')}_`

type Mode = 'bare' | 'bare-txn' | Stage | 'dual-write/parallel' | 'dual-write/async'
const MODES: Mode[] = ['bare', 'bare-txn', 'legacy', 'dual-write', 'dual-write/parallel', 'dual-write/async', 'write-shards']
const LABEL: Record<Mode, string> = {
  bare: 'bare pool INSERT (autocommit)',
  'bare-txn': 'bare txn: BEGIN, fence read, INSERT, journal INSERT, COMMIT',
  legacy: 'store @ legacy',
  'dual-write': 'store @ dual-write (secondaries in order)',
  'dual-write/parallel': 'store @ dual-write, parallelSecondaries',
  'dual-write/async': 'store @ dual-write, asyncSecondaries',
  'write-shards': 'store @ write-shards (in order)',
  'shadow-read': '',
  'read-shards': '',
  shards: '',
}

const row = benchOrderRows({ timeBase: 50_000_000, worker: 1 })


async function main(): Promise<void> {
  const raw = buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [url], databasesPerHost: 4, prefix, redisKeyPrefix: `${prefix}:` })
  const config = parseConfig(raw, process.env)
  const admin = createMysqlPool(url, { connectionLimit: CONCURRENCY + 2 })
  const rt = openRuntime(config, { connectionLimit: CONCURRENCY * 2 + 2 })
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(`${prefix}legacy`)}`)
    await admin.query(legacyOrdersDDL(`${prefix}legacy`, 'orders'))
    await admin.query(`CREATE DATABASE ${quoteIdent(`${prefix}bare`)}`)
    await admin.query(legacyOrdersDDL(`${prefix}bare`, 'orders'))
    await provision(rt)
    for (const p of primaryDatabases(config)) {
      await admin.query(`CREATE TABLE IF NOT EXISTS ${qualified(p.database, 'shardkit_fence')} (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, stage_version BIGINT NOT NULL, state VARCHAR(8) NOT NULL) ENGINE=InnoDB`)
      await admin.query(`INSERT INTO ${qualified(p.database, 'shardkit_fence')} (id, stage_version, state) VALUES (1, 1, 'open') ON DUPLICATE KEY UPDATE stage_version = 1, state = 'open'`)
    }
    const [[settings]] = (await admin.query<RowDataPacket[]>(
      'SELECT @@version AS version, @@innodb_buffer_pool_size AS bp, @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sync_binlog, @@log_bin AS log_bin, @@tx_isolation AS iso',
    )) as unknown as [RowDataPacket[]]
    const bare = createMysqlPool(url, { connectionLimit: CONCURRENCY })
    const bareSql = `INSERT INTO ${qualified(`${prefix}bare`, 'orders')} (${Object.keys(row()).map(quoteIdent).join(', ')}) VALUES (${Object.keys(row()).map(() => '?').join(', ')})`
    const stores = new Map<Mode, DualWriteStore>()
    for (const m of MODES) {
      if (m === 'bare' || m === 'bare-txn') continue
      const stage = m.split('/')[0] as Stage
      const state: StageState = { stage, version: 1, readPercent: stage === 'write-shards' ? 100 : 0, changedAt: new Date().toISOString() }
      stores.set(m, new DualWriteStore({ runtime: rt, stage: { current: () => state, ready: true }, parallelSecondaries: m !== 'dual-write' && m !== 'write-shards', asyncSecondaries: m === 'dual-write/async' }))
    }
    const fence = qualified(`${prefix}bare`, 'shardkit_fence')
    await admin.query(`CREATE TABLE ${fence} (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, stage_version BIGINT NOT NULL, state VARCHAR(8) NOT NULL) ENGINE=InnoDB`)
    await admin.query(`INSERT INTO ${fence} VALUES (1, 1, 'open')`)
    await admin.query(`CREATE TABLE ${qualified(`${prefix}bare`, 'journal')} LIKE ${qualified(`${prefix}legacy`, 'shardkit_journal')}`)
    const bareTxn = async (pool: Pool, r: Record<string, string | number | null>) => {
      const c = await pool.getConnection()
      try {
        await c.beginTransaction()
        await c.query(`SELECT stage_version, state FROM ${fence} WHERE id = 1 LOCK IN SHARE MODE`)
        await c.query(bareSql, Object.values(r))
        await c.query(`INSERT INTO ${qualified(`${prefix}bare`, 'journal')} (order_id, op, secondaries, user_id, merchant_id) VALUES (?, 'insert', 'user,merchant', ?, ?)`, [r.order_id, r.user_id, r.merchant_id])
        await c.commit()
      } finally {
        c.release()
      }
    }
    const insert = (m: Mode, pool: Pool) => {
      const r = row()
      return m === 'bare' ? pool.query(bareSql, Object.values(r)) : m === 'bare-txn' ? bareTxn(pool, r) : stores.get(m)!.insert(r)
    }
    for (const m of MODES) for (let i = 0; i < 50; i++) await insert(m, bare) // warm pools and buffer pool

    const lat = new Map<Mode, number[]>(MODES.map((m) => [m, []]))
    const tput = new Map<Mode, number[]>(MODES.map((m) => [m, []]))
    for (let r = 0; r < ROUNDS; r++) {
      for (const m of MODES) {
        for (let i = 0; i < N; i++) {
          const t0 = performance.now()
          await insert(m, bare)
          lat.get(m)!.push(performance.now() - t0)
        }
        let left = N
        const t0 = performance.now()
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (left-- > 0) await insert(m, bare)
          }),
        )
        await stores.get(m)?.flush()
        tput.get(m)!.push(N / ((performance.now() - t0) / 1000))
      }
    }
    const bareP50 = percentile([...lat.get('bare')!].sort((a, b) => a - b), 50)
    const bareTput = median(tput.get('bare')!)
    console.log(`dual-write store inserts vs a bare pool insert; ${ROUNDS} rounds x ${N} sequential + ${N} with ${CONCURRENCY} clients per mode, modes interleaved`)
    console.log(
      `server: MariaDB ${settings!.version}, innodb_buffer_pool_size ${Math.round(Number(settings!.bp) / 2 ** 20)} MiB, innodb_flush_log_at_trx_commit ${settings!.flush}, log_bin ${settings!.log_bin}, sync_binlog ${settings!.sync_binlog}, ${settings!.iso}; 120+120 shards over 4+4 databases on the same server`,
    )
    console.log('')
    console.log('| mode | p50 ms | p99 ms | p50 / bare | inserts/s (' + CONCURRENCY + ' clients) | / bare |')
    console.log('|---|---:|---:|---:|---:|---:|')
    for (const m of MODES) {
      const s = [...lat.get(m)!].sort((a, b) => a - b)
      const t = median(tput.get(m)!)
      console.log(`| ${LABEL[m]} | ${percentile(s, 50).toFixed(2)} | ${percentile(s, 99).toFixed(2)} | ${(percentile(s, 50) / bareP50).toFixed(2)}x | ${Math.round(t)} | ${(t / bareTput).toFixed(2)}x |`)
    }
    const ratio = percentile([...lat.get('dual-write')!].sort((a, b) => a - b), 50) / bareP50
    console.log('')
    console.log(`dual-write p50 / bare p50 = ${ratio.toFixed(2)}x (target <= 2.5x): ${ratio <= 2.5 ? 'met' : 'NOT met'}`)
    await bare.end()
  } finally {
    await rt.close()
    const [dbs] = await admin.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
    for (const d of dbs) await admin.query(`DROP DATABASE ${quoteIdent(String(d.n))}`)
    await admin.end()
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
