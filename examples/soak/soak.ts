/**
 * The soak: the demo's rehearsal (fleet, seed, order-service processes, load)
 * held at `dual-write` for M minutes under steady load while faults land at
 * random intervals (faults.ts), then walked on to `write-shards` and proven:
 * every acknowledged order exactly once in legacy and in each dimension, no
 * id acknowledged twice, verify clean; and on the events side (events.ts: an
 * outbox relay, two consuming services on all 12 partitions) every
 * acknowledged order's events handled exactly once and in version order, or
 * reported as unvouched after a Redis loss, with zero unexplained. Builds on
 * examples/demo and examples/load without changing them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildConfig, moveStage, openRuntime, parseConfig, provision, silentLogger, type Runtime } from '../../src/index.js'
import { startTcpProxy, type TcpProxy } from '../../test/support/tcp-proxy.js'
import { HookServer } from '../../test/faults/support/hook-server.js'
import { runLoad } from '../load/generator.js'
import type { LoadReport } from '../load/stats.js'
import { checkExactlyOnce, type PresenceReport } from '../demo/exactly-once.js'
import { adminPool, checkServers, createLegacy, demoPrefix, legacyCeiling, removeFleet } from '../demo/fleet.js'
import { shardctl, startService, type ServiceInstance } from '../demo/processes.js'
import { seededRandom } from '../../fixtures/generate-orders.js'
import { seedLegacy } from '../demo/seed.js'
import { FAULT_KINDS, inject, type FaultKind, type FaultRecord } from './faults.js'
import { finished, spawnTs } from '../demo/processes.js'
import { openEventConnection } from '../../src/events/amqp.js'
import { startSoakConsumers, type SoakConsumers, type SoakEventsReport } from './events.js'
import type { Connection } from 'rabbitmq-client'
import { startMariadbInstance, type MariadbInstance } from '../../test/support/mariadb-instance.js'
import { startBusyLoops, stopBusyLoops } from '../demo/contend.js'
import { shardTablesOf } from './db-stalls.js'
import { checkDeletedStayDeleted, seededRange, startDeleter, type Deleter, type DeleterReport } from './deleter.js'

export interface SoakOptions {
  readonly minutes: number
  readonly rps: number
  readonly orders: number
  readonly mysqlUrl: string
  readonly redisUrl: string
  readonly keep: boolean
  /** Seconds between faults: uniform in [min, max]. */
  readonly gapS?: readonly [number, number]
  readonly seed?: number
  /** Which faults to inject (default all of FAULT_KINDS). */
  readonly faults?: readonly FaultKind[]
  readonly log: (line: string) => void
  /** Busy-loop processes beside the run (`--contend N`, default 0). */
  readonly contend?: number
  /** Put half the shard databases on an extra mariadbd the `host-stop` fault pauses (default true). */
  readonly extraHost?: boolean
}

/** Everything the soak measured. */
export interface SoakReport {
  readonly date: string
  readonly minutes: number
  readonly rps: number
  readonly achievedRps: number | null
  readonly load: Omit<LoadReport, 'byOp' | 'failures'> | null
  readonly faults: Readonly<Partial<Record<FaultKind, { injected: number; survived: number }>>>
  readonly faultLog: readonly FaultRecord[]
  readonly acknowledged: number
  readonly lost: number | null
  readonly duplicated: number | null
  readonly inLegacy: number | null
  readonly verifyClean: boolean | null
  readonly presence: PresenceReport | null
  /** The consumer side: each consuming service's verdict. */
  readonly events: SoakEventsReport | null
  /** Seeded orders deleted through a store while the faults landed, and any found alive afterwards. */
  readonly deletes: { acknowledged: number; notAcknowledged: number; alive: number } | null
  readonly problems: readonly string[]
  readonly ok: boolean
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Runs the soak; resolves with the report even when something failed (`ok` false, `problems` say why). */
export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31)
  const random = seededRandom(seed)
  const prefix = demoPrefix()
  const dir = mkdtempSync(join(tmpdir(), 'sksoak-'))
  const problems: string[] = []
  const faultLog: FaultRecord[] = []
  const services: ServiceInstance[] = []
  const acknowledged: string[] = []
  let rt: Runtime | undefined
  let proxy: TcpProxy | undefined
  // Services announce their phase points here, so a service-kill can land between a primary commit and its copies.
  const hooks = await HookServer.listen()
  const serviceEnv = { ...process.env, SHARDKIT_FAULT_HOOKS: hooks.path! }
  let load: LoadReport | null = null
  let presence: PresenceReport | null = null
  let verifyClean: boolean | null = null
  let events: SoakEventsReport | null = null
  let consumers: SoakConsumers | undefined
  let amqp: Connection | undefined
  let relay: { child: ReturnType<typeof spawnTs>; done: ReturnType<typeof finished>; log: string } | undefined
  const kinds = o.faults ?? FAULT_KINDS
  let extra: MariadbInstance | undefined
  let loops: ReturnType<typeof startBusyLoops> = []
  let deleter: Deleter | undefined
  let deleted: DeleterReport | undefined
  let deletes: SoakReport['deletes'] = null
  const abort = new AbortController()
  let loadRun: Promise<LoadReport> | undefined
  o.log(`soak: ${o.minutes} min at ${o.rps} requests/s, fault seed ${seed}, prefix ${prefix}, files in ${dir}`)

  const move = async (kind: 'advance', percent?: number) => {
    for (let attempt = 1; ; attempt++) {
      const r = await moveStage(rt!, { kind, ...(percent !== undefined ? { percent } : {}), reason: 'shardkit soak', actor: 'shardkit-soak', ackTimeoutMs: 5_000, drainTimeoutMs: 10_000 })
      if (r.outcome === 'done') return o.log(`> now ${r.to?.stage}${percent !== undefined ? ` ${percent}%` : ''}`)
      if (attempt >= 30) throw new Error(`cutover advance refused: ${r.outcome}: ${r.reasons.join('; ')}`)
      await sleep(1_000)
    }
  }
  const mustCli = async (args: string[]) => {
    const r = await shardctl(configPath, args)
    if (r.code !== 0) throw new Error(`shardctl ${args.join(' ')} exit ${r.code}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`)
    return r
  }
  let configPath = ''

  try {
    await checkServers(o.mysqlUrl, o.redisUrl)
    const server = new URL(o.mysqlUrl)
    proxy = await startTcpProxy({ targetHost: server.hostname, targetPort: Number(server.port || 3306) })
    const viaProxy = new URL(o.mysqlUrl)
    viaProxy.hostname = '127.0.0.1'
    viaProxy.port = String(proxy.port)
    // A second shard host of its own (a real mariadbd), so a paused host is one the soak may pause.
    if (o.extraHost !== false) {
      extra = await startMariadbInstance({ bufferPoolMb: 128 })
      o.log(`> extra shard host ${extra.url} (half the shard databases)`)
    }
    const admin = adminPool(o.mysqlUrl)
    let users = 0
    let merchants = 0
    try {
      const legacy = await createLegacy(admin, prefix)
      const seeded = await seedLegacy(admin, legacy.database, legacy.table, o.orders)
      users = seeded.users
      merchants = seeded.merchants
      const ceiling = await legacyCeiling(admin, legacy.database, legacy.table)
      // Legacy goes through the proxy (the fault target); shards and control go straight to the server.
      const built = buildConfig({ legacyUrl: viaProxy.toString().replace(/\/$/, ''), legacyDatabase: legacy.database, legacyTable: 'orders', idCeiling: ceiling, shardHosts: extra ? [o.mysqlUrl, extra.url] : [o.mysqlUrl], databasesPerHost: extra ? 2 : 4, prefix, redisUrl: o.redisUrl, redisKeyPrefix: `${prefix.replace(/_$/, '')}:` })
      // An exchange of this run's own: no other run's events reach the soak's queues.
      const raw = { ...built, events: { ...(built.events ?? {}), exchange: `${prefix}events` } }
      configPath = join(dir, 'shardkit.json')
      writeFileSync(configPath, `${JSON.stringify(raw, null, 2)}\n`, { mode: 0o600 })
      rt = openRuntime(parseConfig(raw, {}), { logger: silentLogger })
    } finally {
      await admin.end()
    }
    o.log(`> seeded ${o.orders} orders; provisioning`)
    await provision(rt)
    if ((o.contend ?? 0) > 0) {
      loops = startBusyLoops(o.contend!)
      o.log(`> ${o.contend} busy loop(s) beside the run`)
    }
    consumers = await startSoakConsumers(rt, { prefix, stateDatabase: `${prefix}consumer_state`, log: o.log })
    amqp = openEventConnection(rt.config.events.url, { name: 'shardkit-soak faults' })
    const relayLog = join(dir, 'relay.log')
    const relayChild = spawnTs('bin/shardctl.ts', ['-c', configPath, 'events', 'relay', '--lease-ttl', '3000'], { stderrTo: relayLog })
    relay = { child: relayChild, done: finished(relayChild), log: relayLog }
    o.log(`> consumers (durable, redis-only) on ${prefix}*.order-events.00-11, relay logging to ${relayLog}`)
    for (let i = 1; i <= 2; i++) services.push(await startService(configPath, `${prefix}svc${i}`, join(dir, `service-${i}.log`), 60_000, ['--events', 'outbox'], serviceEnv))
    const urls = services.map((s) => s.url)
    const seededKeys = await seededRange(rt) // before the load creates its first order
    loadRun = runLoad({ urls, rps: o.rps, durationS: 0, signal: abort.signal, users, merchants, timeoutMs: 15_000, onCreated: (id) => acknowledged.push(id) })
    o.log(`> load on ${urls.join(', ')}`)
    await sleep(3_000)
    await move('advance') // dual-write
    // Deletes of seeded orders from now on: the backfill, the stalls and every replay must never bring one back.
    deleter = await startDeleter(rt, { instanceId: `${prefix}deleter`, random, seeded: seededKeys, log: o.log })
    await mustCli(['backfill'])
    o.log('> backfilled; injecting faults')

    const target = { configPath, dir, prefix, proxy, services, random, log: o.log, hooks, serviceEnv, consumers, amqp, stalls: { tables: shardTablesOf(rt), ...(extra ? { extraHost: extra } : {}), random } }
    const end = Date.now() + o.minutes * 60_000
    const [gapMin, gapMax] = o.gapS ?? [5, 15]
    let round: FaultKind[] = []
    while (Date.now() < end) {
      await sleep(Math.min(Math.max(0, end - Date.now()), (gapMin + random() * (gapMax - gapMin)) * 1000))
      if (Date.now() >= end) break
      // Every chosen kind comes round once in each round, in a random order within the round.
      if (round.length === 0) round = [...kinds].sort(() => random() - 0.5)
      const kind = round.shift()!
      const rec = await inject(kind, target)
      faultLog.push(rec)
      o.log(`  fault ${kind}: ${rec.survived ? 'survived' : 'NOT SURVIVED'}: ${rec.detail}`)
      if (!rec.survived) problems.push(`${kind} at ${rec.at} not survived: ${rec.detail}`)
    }

    o.log('> faults over: resume backfill, drain, then walk on to write-shards')
    await mustCli(['backfill'])
    await mustCli(['dualwrite', 'drain'])
    await mustCli(['verify'])
    await move('advance') // shadow-read
    await mustCli(['verify'])
    await move('advance', 100) // read-shards 100%
    await mustCli(['verify'])
    await move('advance') // write-shards
    await sleep(3_000)
    deleted = await deleter.stop()
    deleter = undefined
  } catch (err) {
    problems.push(`unexpected: ${(err as Error).message}`)
  } finally {
    if (deleter) deleted = await deleter.stop().catch(() => undefined)
    stopBusyLoops(loops)
    extra?.resume()
    abort.abort()
    if (loadRun) load = await loadRun.catch((err: unknown) => (problems.push(`load: ${(err as Error).message}`), null))
    for (const s of services) await s.stop()
    await hooks.close()
    proxy?.restore()
  }

  if (rt && problems.length === 0) {
    try {
      await mustCli(['dualwrite', 'drain'])
      const v = await shardctl(configPath, ['verify'])
      verifyClean = v.code === 0
      if (!verifyClean) problems.push(`final verify exit ${v.code}: ${v.stderr.trim().split('\n').at(-1) ?? v.stdout.slice(0, 300)}`)
      presence = await checkExactlyOnce(rt, acknowledged)
      if (!presence.ok) problems.push(`exactly-once failed: ${JSON.stringify(presence.dimensions)}`)
      if (presence.inLegacy !== new Set(acknowledged).size) problems.push(`${new Set(acknowledged).size - presence.inLegacy} acknowledged orders missing from legacy`)
      if (deleted) {
        const check = await checkDeletedStayDeleted(rt, deleted.acknowledged)
        deletes = { acknowledged: deleted.acknowledged.length, notAcknowledged: deleted.failed, alive: check.alive.length }
        if (check.alive.length > 0) problems.push(`${check.alive.length} acknowledged deletes alive again: ${check.alive.slice(0, 5).map((a) => `${a.id} in ${a.where}`).join('; ')}`)
      }
    } catch (err) {
      problems.push(`invariants: ${(err as Error).message}`)
    }
  }
  // The events check stands apart from the fleet's: it needs only the user shards' final versions.
  if (rt && consumers) {
    try {
      events = await consumers.settle(acknowledged)
      for (const v of events.services) if (!v.ok) problems.push(`events (${v.service}): ${v.unexplained} unexplained orders${v.durable && v.unvouchedEvents > 0 ? `, ${v.unvouchedEvents} unvouched with a durable store` : ''}; e.g. ${v.samples.join('; ')}`)
    } catch (err) {
      problems.push(`events check: ${(err as Error).message}`)
    }
  }
  if (relay && relay.child.exitCode === null && relay.child.signalCode === null) {
    relay.child.kill('SIGTERM')
    const x = await relay.done
    if (x.code !== 0) problems.push(`events relay exited with ${x.code ?? x.signal} on SIGTERM; see ${relay.log}`)
  }
  await consumers?.close(!o.keep).catch((err: unknown) => problems.push(`closing the consumers: ${(err as Error).message}`))
  await amqp?.close().catch(() => undefined)
  await rt?.close()
  await proxy?.close()
  if (!o.keep) {
    await removeFleet(o.mysqlUrl, o.redisUrl, prefix).catch((err: unknown) => problems.push(`cleanup: ${(err as Error).message}`))
    rmSync(dir, { recursive: true, force: true })
  }
  await extra?.destroy()

  const faults = Object.fromEntries(kinds.map((k) => [k, { injected: faultLog.filter((f) => f.kind === k).length, survived: faultLog.filter((f) => f.kind === k && f.survived).length }])) as SoakReport['faults']
  const lost = presence ? Math.max(...presence.dimensions.map((d) => d.checked - d.exactlyOnce - d.duplicated.length), new Set(acknowledged).size - presence.inLegacy) : null
  const duplicated = presence ? presence.acknowledgedTwice + Math.max(...presence.dimensions.map((d) => d.duplicated.length)) : null
  const { byOp: _b, failures: _f, ...loadSummary } = load ?? ({} as LoadReport)
  return {
    date: new Date().toISOString(),
    minutes: o.minutes,
    rps: o.rps,
    achievedRps: load ? Math.round((load.requests / load.seconds) * 10) / 10 : null,
    load: load ? loadSummary : null,
    faults,
    faultLog,
    acknowledged: acknowledged.length,
    lost,
    duplicated,
    inLegacy: presence?.inLegacy ?? null,
    verifyClean,
    presence,
    events,
    deletes,
    problems,
    ok: problems.length === 0 && lost === 0 && duplicated === 0 && verifyClean === true && events?.ok === true && (deletes === null || deletes.alive === 0),
  }
}

/** The report as text. */
export function formatSoak(r: SoakReport): string {
  const l = r.load
  const lines = [
    `shardkit soak ${r.date}: ${r.minutes} min, asked ${r.rps} requests/s`,
    `load held: ${r.achievedRps ?? '-'} requests/s achieved of ${r.rps} asked (${l ? `${l.requests} requests, ${l.errors} failed (unacknowledged: killed instance, legacy cut or delayed), ${l.skipped} ticks skipped, p99 ${l.latency.p99} ms` : 'no load report'})`,
    'faults (injected / survived):',
    ...(Object.keys(r.faults) as FaultKind[]).map((k) => `  ${k.padEnd(14)} ${r.faults[k]!.injected} / ${r.faults[k]!.survived}`),
    `orders acknowledged: ${r.acknowledged}`,
    `lost: ${r.lost ?? '-'} (expected 0)`,
    `duplicated: ${r.duplicated ?? '-'} (expected 0)`,
    `in legacy: ${r.inLegacy ?? '-'} of ${r.acknowledged}; verify ${r.verifyClean === null ? 'not run' : r.verifyClean ? 'clean' : 'NOT clean'}`,
    r.deletes ? `deletes of seeded orders: ${r.deletes.acknowledged} acknowledged (${r.deletes.notAcknowledged} not), resurrected: ${r.deletes.alive} (expected 0)` : 'deletes: not checked',
    ...(r.events
      ? r.events.services.map(
          (v) =>
            `events ${v.service.padEnd(10)} ${v.exactlyOnceInOrder}/${v.acknowledged} orders exactly once in order; ${v.unvouchedOrders} orders (${v.unvouchedEvents} events) reported unvouched; ${v.unexplained} unexplained; ${v.counters.redisLosses} Redis losses noticed (summed over its 12 queues), ${v.counters.restored} orders restored from the durable store, ${v.counters.duplicates} duplicate and ${v.counters.stale} stale deliveries dropped, ${v.counters.gaps} gaps`,
        )
      : ['events: not checked']),
    ...(r.problems.length ? ['problems:', ...r.problems.map((p) => `  - ${p}`)] : []),
    r.ok ? 'SOAK PASSED' : 'SOAK FAILED',
  ]
  return `${lines.join('\n')}\n`
}
