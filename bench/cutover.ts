/**
 * `npm run bench:cutover`: how long a stage change takes to reach 1, 4 and 16
 * watching instances (each its own runtime and Redis connections), and the
 * write fence's time during the write-primary switch (read-shards <->
 * write-shards) under concurrent fenced writers, in one run on the local
 * servers. Compares against the issue's targets (pub/sub < 100 ms, fence < 1 s)
 * and the peers' figures it names (gh-ost freezes writes up to 3 s).
 * Creates its own `skb_cutover_*` databases and Redis keys, and removes them.
 *
 * Env: BENCH_MYSQL_URL (default mysql://root@127.0.0.1:3306), BENCH_REDIS_URL
 * (default redis://127.0.0.1:6379), BENCH_ROUNDS (stage changes per fleet size, default 10),
 * BENCH_SWITCHES (write-primary switches, default 6), BENCH_WRITERS (concurrent writers, default 4),
 * BENCH_STORE_WRITERS (writers through the DualWriteStore for the last table, default 32),
 * BENCH_CONTEND (busy-loop processes during that table, default 1).
 *
 * The last table is the shape that broke the demo: the write switch while 32
 * writers go through the DualWriteStore (primary transaction, then the
 * secondaries as the service writes them, journal, pools of 10 connections
 * per host as the service has) with a busy loop taking a core.
 */
import { randomBytes } from 'node:crypto'
import type { RowDataPacket } from 'mysql2/promise'
import { buildConfig } from '../src/config/init.js'
import { parseConfig } from '../src/config/schema.js'
import { checkFence } from '../src/cutover/fence.js'
import { stagePolicy } from '../src/cutover/stages.js'
import { moveStage } from '../src/cutover/steps.js'
import { StageWatcher } from '../src/cutover/watcher.js'
import { DEFAULT_GUARD_READERS, type GuardReaders } from '../src/cutover/guards.js'
import { isShardkitError } from '../src/errors.js'
import { provision } from '../src/provision/index.js'
import { shardOfKey } from '../src/router/shard-function.js'
import { createMysqlPool, qualified, quoteIdent } from '../src/runtime/mysql.js'
import { openRuntime, type Runtime } from '../src/runtime/runtime.js'
import { legacyOrdersDDL } from '../fixtures/legacy-schema.js'
import { spawn } from 'node:child_process'
import { DualWriteStore } from '../src/dualwrite/store.js'
import { readJournalDepth } from '../src/dualwrite/journal.js'
import { encodeId } from '../src/idgen/layout.js'

const url = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10)
const SWITCHES = Number(process.env.BENCH_SWITCHES ?? 6)
const WRITERS = Number(process.env.BENCH_WRITERS ?? 4)
const STORE_WRITERS = Number(process.env.BENCH_STORE_WRITERS ?? 32)
const CONTEND = Number(process.env.BENCH_CONTEND ?? 1)
const prefix = `skb_cutover_${randomBytes(3).toString('hex')}_`

const readers: GuardReaders = {
  // The bench measures the switch, not backfill/verify: their results are given as met.
  readBackfillStatus: async () => ({ state: 'complete', dimensions: { user: { state: 'complete', rowsCopied: 0, updatedAt: null }, merchant: { state: 'complete', rowsCopied: 0, updatedAt: null } }, completedAt: null }),
  readLastVerify: async () => ({ runId: 'bench', startedAt: new Date(Date.now() + 1).toISOString(), finishedAt: new Date().toISOString(), clean: true, differences: 0, since: null, dimension: 'all' }),
  readJournalDepth: DEFAULT_GUARD_READERS.readJournalDepth,
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN
}
const f1 = (n: number) => n.toFixed(1)

async function propagation(rt: Runtime, config: ReturnType<typeof parseConfig>, n: number): Promise<{ n: number; pubsubP50: number; pubsubMax: number; ackP50: number; ackMax: number; moveP50: number }> {
  const runtimes = Array.from({ length: n }, () => openRuntime(config, { connectionLimit: 2 }))
  const watchers = runtimes.map((r, i) => new StageWatcher(r, { instanceId: `bench-${n}-${i}`, heartbeatMs: 500 }))
  await Promise.all(watchers.map((w) => w.start()))
  const pubsub: number[] = []
  const ack: number[] = []
  const move: number[] = []
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now()
      const arrivals = watchers.map((w) => new Promise<number>((resolve) => w.once('change', () => resolve(performance.now()))))
      const r = await moveStage(rt, { kind: round % 2 === 0 ? 'advance' : 'rollback', actor: 'bench', ackTimeoutMs: 5_000 })
      if (r.outcome !== 'done') throw new Error(`move ${round} ${r.outcome}: ${r.reasons.join('; ')}`)
      const tDone = performance.now()
      const publishDone = r.steps.filter((s) => ['lock', 'guards', 'raise-fences', 'publish'].includes(s.step)).reduce((a, s) => a + (s.ms ?? 0), 0)
      const last = Math.max(...(await Promise.all(arrivals)))
      // From the publish call's end (approximated by the steps before it) to the last watcher applying it.
      pubsub.push(last - t0 - publishDone)
      ack.push(r.steps.filter((s) => ['raise-fences', 'publish', 'await-acks'].includes(s.step)).reduce((a, s) => a + (s.ms ?? 0), 0))
      move.push(tDone - t0)
    }
  } finally {
    await Promise.all(watchers.map((w) => w.close()))
    await Promise.all(runtimes.map((r) => r.close()))
  }
  return { n, pubsubP50: pct(pubsub, 50), pubsubMax: Math.max(...pubsub), ackP50: pct(ack, 50), ackMax: Math.max(...ack), moveP50: pct(move, 50) }
}

async function fencedInsert(rt: Runtime, w: StageWatcher, orderId: string, userId: string): Promise<void> {
  const s = w.current()!
  const p = rt.config.dimensions.user.shards[shardOfKey(userId)]!
  const legacy = stagePolicy(s).writePrimary === 'legacy'
  const pool = legacy ? rt.legacy() : rt.host(p.host)
  const db = legacy ? rt.config.legacy.database : p.database
  const table = legacy ? rt.config.legacy.table : p.table
  const conn = await pool.getConnection()
  try {
    await conn.beginTransaction()
    try {
      await checkFence(conn, db, s.version)
      await conn.query(`INSERT INTO ${qualified(db, table)} (order_id, user_id, merchant_id, status, total_cents, items, version, created_at, updated_at) VALUES (?, ?, 1, 'created', 100, '[]', 1, NOW(3), NOW(3))`, [orderId, userId])
      await conn.commit()
    } catch (err) {
      await conn.rollback().catch(() => undefined)
      throw err
    }
  } finally {
    conn.release()
  }
}

async function fenceUnderLoad(rt: Runtime, config: ReturnType<typeof parseConfig>) {
  const wrt = openRuntime(config, { connectionLimit: WRITERS + 2 })
  const watcher = new StageWatcher(wrt, { instanceId: 'bench-writer', heartbeatMs: 500 })
  await watcher.start()
  let stop = false
  let next = 1
  const lat: number[] = []
  let refusals = 0
  let stall = 0
  const loops = Array.from({ length: WRITERS }, async () => {
    while (!stop) {
      const id = String(next++)
      const t = performance.now()
      for (;;) {
        try {
          await fencedInsert(wrt, watcher, id, String(1000 + (Number(id) % 5000)))
          break
        } catch (err) {
          if (!isShardkitError(err, 'FENCE_REJECTED')) throw err
          refusals++
          await new Promise((r) => setTimeout(r, 1))
        }
      }
      const ms = performance.now() - t
      lat.push(ms)
      stall = Math.max(stall, ms)
    }
  })
  const fence: number[] = []
  const drain: number[] = []
  try {
    await new Promise((r) => setTimeout(r, 500))
    for (let i = 0; i < SWITCHES; i++) {
      const r = await moveStage(rt, { kind: i % 2 === 0 ? 'advance' : 'rollback', readers, actor: 'bench', ackTimeoutMs: 5_000 })
      if (r.outcome !== 'done') throw new Error(`switch ${i} ${r.outcome}: ${r.reasons.join('; ')}`)
      fence.push(r.fenceMs!)
      drain.push(r.steps.find((s) => s.step === 'drain-journal')?.ms ?? 0)
      await new Promise((r) => setTimeout(r, 300))
    }
  } finally {
    stop = true
    await Promise.allSettled(loops)
    await watcher.close()
    await wrt.close()
  }
  return { fence, drain, writes: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), stall, refusals }
}

/** Busy loops beside the measurement (`sh -c 'while :; do :; done'`), killed after. */
function busyLoops(n: number): () => void {
  const kids = Array.from({ length: n }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }))
  return () => kids.forEach((k) => k.kill('SIGKILL'))
}

async function storeUnderLoad(rt: Runtime, config: ReturnType<typeof parseConfig>) {
  // The service's shape: its own runtime (10 connections per host), a watcher, the store with its defaults.
  const srt = openRuntime(config)
  const watcher = new StageWatcher(srt, { instanceId: 'bench-store', heartbeatMs: 500 })
  await watcher.start()
  const store = new DualWriteStore({ runtime: srt, stage: watcher })
  let stop = false
  let seq = 0
  const lat: number[] = []
  let failed = 0
  let refusals = 0
  const loops = Array.from({ length: STORE_WRITERS }, async (_, w) => {
    while (!stop) {
      const user = String(20_000 + ((w * 7919 + seq) % 5_000))
      seq++
      const id = encodeId({ time: 50_000_000 + seq, worker: 9, sequence: seq % 128, shard: shardOfKey(user) })
      const t = performance.now()
      for (let attempt = 0; ; attempt++) {
        try {
          await store.insert({ order_id: id, user_id: user, merchant_id: String(1 + (seq % 250)), status: 'created', total_cents: 100, items: '[]' })
          if (seq % 3 === 0) await store.update(id, { status: 'paid' })
          break
        } catch (err) {
          if (isShardkitError(err, 'ORDER_EXISTS')) break
          if (!isShardkitError(err) || !err.retryable || attempt > 300 || stop) {
            failed++
            break
          }
          if (isShardkitError(err, 'FENCE_REJECTED')) refusals++
          await new Promise((r) => setTimeout(r, 10))
        }
      }
      lat.push(performance.now() - t)
    }
  })
  const fence: number[] = []
  const attempts: number[] = []
  const settle: number[] = []
  const stopBusy = busyLoops(CONTEND)
  try {
    await new Promise((r) => setTimeout(r, 1_000))
    for (let i = 0; i < SWITCHES; i++) {
      const r = await moveStage(rt, { kind: i % 2 === 0 ? 'advance' : 'rollback', readers, actor: 'bench' })
      if (r.outcome !== 'done') throw new Error(`switch ${i} ${r.outcome} after ${r.attempts} attempts: ${r.reasons.join('; ')}; last attempt: ${r.steps.map((s) => `${s.step} ${s.status} ${s.ms ?? '-'} ms`).join(', ')}`)
      fence.push(r.fenceMs!)
      attempts.push(r.attempts)
      if (process.env.BENCH_STEPS) console.log(`  switch ${i}: ${r.steps.map((st) => `${st.step} ${st.ms ?? '-'}`).join(', ')}`)
      // What the journal owes after the switch (entries older than the 5 s settle window never appear here): time to empty.
      const t0 = performance.now()
      while ((await readJournalDepth(rt, { minAgeMs: 1_000 })).total > 0 && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100))
      settle.push(performance.now() - t0)
      await new Promise((r) => setTimeout(r, 500))
    }
  } finally {
    stopBusy()
    stop = true
    await Promise.allSettled(loops)
    await store.flush()
    await watcher.close()
    await srt.close()
  }
  return { fence, attempts, settle, writes: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat), failed, refusals }
}

async function main(): Promise<void> {
  const raw = buildConfig({ legacyUrl: url, legacyDatabase: `${prefix}legacy`, legacyTable: 'orders', idCeiling: '1000000000', shardHosts: [url], databasesPerHost: 2, prefix, redisUrl, redisKeyPrefix: `${prefix}:` })
  const config = parseConfig(raw, process.env)
  const admin = createMysqlPool(url, { connectionLimit: 2 })
  const rt = openRuntime(config)
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(`${prefix}legacy`)}`)
    await admin.query(legacyOrdersDDL(`${prefix}legacy`, 'orders'))
    await provision(rt)
    const [[v]] = (await admin.query<RowDataPacket[]>('SELECT VERSION() AS v, @@innodb_buffer_pool_size AS bp, @@innodb_flush_log_at_trx_commit AS flush, @@log_bin AS binlog')) as unknown as [RowDataPacket[]]
    console.log(`server: ${v!.v}, buffer pool ${Math.round(Number(v!.bp) / 2 ** 20)} MiB, innodb_flush_log_at_trx_commit=${v!.flush}, log_bin=${v!.binlog}; Redis ${redisUrl.replace(/\/\/[^@]*@/, '//')}`)
    console.log(`\nstage change reaching N watchers (${ROUNDS} changes each, legacy <-> dual-write, each watcher its own runtime):`)
    console.log('| instances | publish -> last watcher applied, p50 ms | max ms | / 100 ms target | raise+publish+all acknowledged, p50 ms | max ms | whole move p50 ms |')
    console.log('|---:|---:|---:|---:|---:|---:|---:|')
    for (const n of [1, 4, 16]) {
      const r = await propagation(rt, config, n)
      console.log(`| ${n} | ${f1(r.pubsubP50)} | ${f1(r.pubsubMax)} | ${(r.pubsubMax / 100).toFixed(2)}x | ${f1(r.ackP50)} | ${f1(r.ackMax)} | ${f1(r.moveP50)} |`)
    }
    // Walk to read-shards at 100% for the write-primary switches.
    for (const step of [{}, {}, { percent: 100 }] as const) {
      const r = await moveStage(rt, { kind: 'advance', readers, actor: 'bench', ...step })
      if (r.outcome !== 'done') throw new Error(`walk: ${r.reasons.join('; ')}`)
    }
    const f = await fenceUnderLoad(rt, config)
    console.log(`\nwrite fence, read-shards <-> write-shards x ${SWITCHES}, ${WRITERS} concurrent fenced writers (${f.writes} inserts):`)
    console.log('| fence p50 ms | fence max ms | / 1 s target | / gh-ost 3 s | drain in fence p50 ms | write p50 ms | write p99 ms | longest write (incl. retries) ms | retryable refusals |')
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    console.log(`| ${f1(pct(f.fence, 50))} | ${f1(Math.max(...f.fence))} | ${(Math.max(...f.fence) / 1000).toFixed(3)}x | ${(Math.max(...f.fence) / 3000).toFixed(3)}x | ${f1(pct(f.drain, 50))} | ${f1(f.p50)} | ${f1(f.p99)} | ${f1(f.stall)} | ${f.refusals} |`)
    const d = await storeUnderLoad(rt, config)
    console.log(`\nwrite switch, read-shards <-> write-shards x ${SWITCHES}, ${STORE_WRITERS} writers through the DualWriteStore (secondaries, journal, 10-connection pools), ${CONTEND} busy loop(s) running (${d.writes} writes):`)
    console.log('| fence p50 ms | fence p99 ms | fence max ms | / 1 s target | attempts (max) | journal owed after the switch drained in, max ms | write p50 ms | write p99 ms | longest write (incl. retries) ms | failed writes | retryable refusals |')
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    console.log(`| ${f1(pct(d.fence, 50))} | ${f1(pct(d.fence, 99))} | ${f1(Math.max(...d.fence))} | ${(Math.max(...d.fence) / 1000).toFixed(3)}x | ${Math.max(...d.attempts)} | ${f1(Math.max(...d.settle))} | ${f1(d.p50)} | ${f1(d.p99)} | ${f1(d.max)} | ${d.failed} | ${d.refusals} |`)
  } finally {
    await rt.close()
    const r = openRuntime(config)
    try {
      let cursor = '0'
      do {
        const [nextCursor, keys] = await r.redis().scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 200)
        cursor = nextCursor
        if (keys.length) await r.redis().del(...keys)
      } while (cursor !== '0')
    } finally {
      await r.close()
    }
    const [dbs] = await admin.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${prefix.replaceAll('_', '\\_')}%`])
    for (const d of dbs) await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(d.n as string)}`)
    await admin.end()
  }
}

await main()
