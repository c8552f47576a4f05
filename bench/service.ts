/**
 * `npm run bench:service`: orders created per second and p50/p99 latency
 * through the reference order service (HTTP, fastify, the dual-write store,
 * ids from shardkit's generator) at `legacy`, `dual-write` and `shards`,
 * beside the same row INSERTed through a bare mysql2 pool at the same
 * concurrency, in one run on the local server. The service and the load
 * generator share this process (and the machine's 2 cores with MariaDB).
 * Creates its own `skb_service_*` databases and drops them.
 *
 * Env: BENCH_MYSQL_URL (default mysql://root@127.0.0.1:3306), BENCH_REDIS_URL,
 * BENCH_SECONDS (per mode per round, default 6), BENCH_ROUNDS (default 3),
 * BENCH_CONCURRENCY (requests in flight, default 16).
 */
import { randomBytes } from 'node:crypto'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { buildApp } from '../examples/order-service/app.js'
import { openIdSource } from '../examples/order-service/ids.js'
import { runLoad } from '../examples/load/generator.js'
import { LatencyRecorder } from '../examples/load/stats.js'
import { buildConfig, createMysqlPool, DualWriteStore, encodeId, openRuntime, parseConfig, provision, qualified, quoteIdent, shardOfKey, silentLogger, type Stage, type StageState } from '../src/index.js'
import { openFencesAt } from '../src/cutover/fence.js'
import { legacyOrdersDDL } from '../fixtures/legacy-schema.js'

const url = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16)
const prefix = `skb_service_${randomBytes(3).toString('hex')}_`
const STAGES_MEASURED: Stage[] = ['legacy', 'dual-write', 'shards']

/** A stage source the bench moves by hand (the cutover's switch is measured by bench:dualwrite). */
class BenchStage {
  state: StageState = { stage: 'legacy', version: 1, readPercent: 0, changedAt: new Date().toISOString() }
  readonly ready = true
  current(): StageState {
    return this.state
  }
}

interface Result {
  perSecond: number[]
  /** Bare inserts: every latency. */
  lat: LatencyRecorder
  /** Service modes: p50/p99 of each round (the load generator's own recorder). */
  rounds: Array<{ p50: number; p99: number }>
}

let seq = 0
async function bareInserts(pool: Pool, db: string, seconds: number, res: Result): Promise<void> {
  const end = performance.now() + seconds * 1000
  let done = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      while (performance.now() < end) {
        seq++
        const user = String(1 + ((seq * 7919) % 50_000))
        const id = encodeId({ time: 80_000_000 + seq, worker: w, sequence: 0, shard: shardOfKey(user) })
        const s = performance.now()
        await pool.query(`INSERT INTO ${qualified(db, 'orders')} (order_id, user_id, merchant_id, status, total_cents, currency, items, address, phone, note, version, created_at, updated_at) VALUES (?, ?, ?, 'created', 1999, 'CNY', ?, ?, ?, NULL, 1, NOW(3), NOW(3))`, [id, user, String(1 + (seq % 2000)), '[{"sku":"SKU-1","name":"宫保鸡丁","qty":1,"price_cents":1999}]', '上海市 徐汇区 漕溪北路 1号', '13800000000'])
        res.lat.add(performance.now() - s)
        done++
      }
    }),
  )
  res.perSecond.push(done / ((performance.now() - t0) / 1000))
}

const admin = createMysqlPool(url, { connectionLimit: 4 })
const raw = buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [url], databasesPerHost: 4, prefix, redisUrl, redisKeyPrefix: `${prefix.replace(/_$/, '')}:` })
const config = parseConfig(raw, {})
const rt = openRuntime(config, { logger: silentLogger, connectionLimit: 20 })
try {
  const [[settings]] = (await admin.query<RowDataPacket[]>('SELECT VERSION() AS v, @@innodb_buffer_pool_size AS bp, @@innodb_flush_log_at_trx_commit AS flush, @@log_bin AS binlog')) as unknown as [RowDataPacket[]]
  await admin.query(`CREATE DATABASE ${quoteIdent(`${prefix}legacy`)}`)
  await admin.query(legacyOrdersDDL(`${prefix}legacy`, 'orders'))
  await admin.query(`CREATE DATABASE ${quoteIdent(`${prefix}bare`)}`)
  await admin.query(legacyOrdersDDL(`${prefix}bare`, 'orders'))
  await provision(rt)
  const stage = new BenchStage()
  await openFencesAt(rt, stage.state.version)
  const ids = await openIdSource(rt, { owner: `${prefix}bench`, logger: silentLogger })
  const store = new DualWriteStore({ runtime: rt, stage })
  const app = await buildApp({ store, stage, ids: ids.source })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const bare = createMysqlPool(url, { connectionLimit: CONCURRENCY })
  const results = new Map<string, Result>()
  const modes = ['bare', ...STAGES_MEASURED]
  for (const m of modes) results.set(m, { perSecond: [], lat: new LatencyRecorder(), rounds: [] })
  for (let round = 1; round <= ROUNDS; round++) {
    for (const m of modes) {
      const res = results.get(m)!
      if (m === 'bare') {
        await bareInserts(bare, `${prefix}bare`, SECONDS, res)
      } else {
        stage.state = { stage: m as Stage, version: stage.state.version + 1, readPercent: m === 'shards' ? 100 : 0, changedAt: new Date().toISOString() }
        await openFencesAt(rt, stage.state.version)
        const r = await runLoad({ urls: [address], rps: 100_000, durationS: SECONDS, maxInFlight: CONCURRENCY, users: 50_000, merchants: 2_000, mix: { create: 1, get: 0, 'list-user': 0, 'list-merchant': 0, status: 0 } })
        if (r.errors > 0) throw new Error(`${r.errors} failed requests at ${m}: ${JSON.stringify(r.failures.slice(0, 2))}`)
        res.perSecond.push(r.created / r.seconds)
        res.rounds.push(r.byOp.create.latency)
      }
      process.stderr.write(`round ${round} ${m}: ${Math.round(res.perSecond.at(-1)!)} orders/s\n`)
    }
  }
  await app.close()
  await store.flush()
  await ids.close()
  await bare.end()
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const bareRate = med(results.get('bare')!.perSecond)
  const bareLat = results.get('bare')!.lat.summary()
  console.log(`server: MariaDB ${settings!.v}, buffer pool ${Math.round(Number(settings!.bp) / 2 ** 20)} MiB, innodb_flush_log_at_trx_commit=${settings!.flush}, binlog ${Number(settings!.binlog) ? 'on' : 'off'}`)
  console.log(`size: ${ROUNDS} rounds x ${SECONDS} s per mode, ${CONCURRENCY} requests in flight, rows ~370 B, 120 + 120 shards over 4 + 4 databases on the one server\n`)
  console.log('| mode | orders/s (median of rounds) | / bare | p50 ms | p99 ms |')
  console.log('|---|---:|---:|---:|---:|')
  console.log(`| bare mysql2 INSERT, no HTTP | ${Math.round(bareRate)} | 1.00x | ${bareLat.p50} | ${bareLat.p99} |`)
  for (const m of STAGES_MEASURED) {
    const r = results.get(m)!
    const rounds = r.rounds
    const p50 = med(rounds.map((x) => x.p50))
    const p99 = med(rounds.map((x) => x.p99))
    const rate = med(r.perSecond)
    console.log(`| service POST /orders @ ${m} | ${Math.round(rate)} | ${(rate / bareRate).toFixed(2)}x | ${p50} | ${p99} |`)
  }
} finally {
  await rt.close()
  const [rows] = await admin.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
  for (const r of rows) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(String(r.n))}`)
  await admin.end()
}
