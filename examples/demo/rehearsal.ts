/**
 * The migration rehearsal: a fresh fleet under steady traffic from two
 * order-service instances, walked from `legacy` to `shards` with the real
 * library and CLI (backfill, verify at every step, the read ramp, the write
 * fence), then proven: zero failed requests, clean verifies, every
 * acknowledged order exactly once per dimension, and every acknowledged
 * order's events received exactly once and in version order across the
 * whole walk (events-check.ts), with the outbox relay killed between
 * publish and mark under traffic and a standby taking over. Never fakes a
 * step: a step that cannot run fails the rehearsal and says why.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { moveStage, openRuntime, provision, silentLogger, type MoveResult, type Runtime } from '../../src/index.js'
import type { LoadReport } from '../load/stats.js'
import { checkExactlyOnce, type PresenceReport } from './exactly-once.js'
import { startEventsCheck, startRelayKillSwitch, type EventsCheck, type EventsReport, type RelayKillSwitch } from './events-check.js'
import { adminPool, checkServers, createLegacy, demoPrefix, legacyCeiling, removeFleet, writeDemoConfig } from './fleet.js'
import { finished, shardctl, spawnTs, startService, type ServiceInstance } from './processes.js'
import { readJournalDepth } from '../../src/dualwrite/journal.js'
import { seedLegacy } from './seed.js'

export interface RehearsalOptions {
  readonly orders: number
  readonly rps: number
  readonly keep: boolean
  readonly mysqlUrl: string
  readonly redisUrl: string
  readonly instances?: number
  /** Show backfill's progress bar (stderr passes through). */
  readonly progress?: boolean
  /** Seconds of traffic at `legacy` before the first move (default 3). */
  readonly warmupS?: number
  /** One line of progress (stderr). */
  readonly log: (line: string) => void
  /** Serve the status page on this address (`host:port`) while the rehearsal runs (`--serve`). */
  readonly serve?: string
}

/** One timed step of the walk. */
export interface StepRecord {
  readonly step: string
  readonly ms: number
  readonly ok: boolean
  readonly detail: string
}

/** One verify run. */
export interface VerifyRecord {
  readonly at: string
  readonly clean: boolean
  readonly exitCode: number | null
  readonly summary: unknown
}

/** Everything the rehearsal measured. */
export interface RehearsalReport {
  readonly prefix: string
  readonly configPath: string
  readonly orders: number
  readonly rps: number
  readonly steps: readonly StepRecord[]
  /** Wall time spent in each stage (entered -> left). */
  readonly stageMs: Readonly<Record<string, number>>
  readonly verifies: readonly VerifyRecord[]
  readonly fenceMs: number | null
  /** How long every attempt of every move held writes (ms), in order. */
  readonly fences?: readonly number[]
  /** After the write switch: how long until the journal owed nothing older than 1 s (null: not reached). */
  readonly journalSettleMs?: number | null
  readonly load: LoadReport | null
  readonly presence: PresenceReport | null
  /** The order-event check (absent in reports from before it existed). */
  readonly events?: EventsReport | null
  readonly removed: { databases: number; redisKeys: number } | null
  readonly totalMs: number
  readonly problems: readonly string[]
  readonly ok: boolean
}

/** Runs the rehearsal. Resolves with the report even when a step fails (`ok` false, `problems` say why). */
export async function runRehearsal(o: RehearsalOptions): Promise<RehearsalReport> {
  const t0 = performance.now()
  const prefix = demoPrefix()
  const dir = mkdtempSync(join(tmpdir(), 'skdemo-'))
  const idsFile = join(dir, 'acknowledged-ids.txt')
  const steps: StepRecord[] = []
  const verifies: VerifyRecord[] = []
  const problems: string[] = []
  const stageEntered: Array<[string, number]> = []
  const services: ServiceInstance[] = []
  let configPath = ''
  let rt: Runtime | undefined
  let load: LoadReport | null = null
  let presence: PresenceReport | null = null
  let events: EventsReport | null = null
  let eventsCheck: EventsCheck | undefined
  const relays: { child: ReturnType<typeof spawnTs>; done: ReturnType<typeof finished>; log: string }[] = []
  let killSwitch: RelayKillSwitch | undefined
  const startRelay = (env?: NodeJS.ProcessEnv) => {
    const log = join(dir, `relay-${relays.length + 1}.log`)
    const child = spawnTs('bin/shardctl.ts', ['-c', configPath, 'events', 'relay', '--lease-ttl', '3000'], { stderrTo: log, ...(env ? { env } : {}) })
    relays.push({ child, done: finished(child), log })
  }
  let statusServer: { close(): Promise<void> } | undefined
  let removed: RehearsalReport['removed'] = null
  let fenceMs: number | null = null
  const fences: number[] = []
  let journalSettleMs: number | null = null
  let loadChild: ReturnType<typeof spawnTs> | undefined
  let loadDone: ReturnType<typeof finished> | undefined

  const step = async <T>(name: string, fn: () => Promise<{ value: T; ok: boolean; detail: string }>): Promise<T> => {
    o.log(`> ${name}`)
    const s = performance.now()
    let r: { value: T; ok: boolean; detail: string }
    try {
      r = await fn()
    } catch (err) {
      const msg = (err as Error).message
      steps.push({ step: name, ms: Math.round(performance.now() - s), ok: false, detail: msg })
      o.log(`  FAILED: ${msg}`)
      throw new StepFailed(`${name}: ${msg}`)
    }
    steps.push({ step: name, ms: Math.round(performance.now() - s), ok: r.ok, detail: r.detail })
    o.log(`  ${r.ok ? 'ok' : 'FAILED'} in ${Math.round(performance.now() - s)} ms: ${r.detail}`)
    if (!r.ok) throw new StepFailed(`${name}: ${r.detail}`)
    return r.value
  }

  const verify = (label: string) =>
    step(`verify (${label})`, async () => {
      const r = await shardctl(configPath, ['verify'])
      const clean = r.code === 0
      if (!clean) keepStderr(dir, `verify-${label}`, r.stderr)
      verifies.push({ at: label, clean, exitCode: r.code, summary: r.json ?? r.stdout.trim().slice(0, 500) })
      const s = r.json as { differences?: number; rowsCompared?: number; sample?: { pair: string; kind: string; key: string }[]; journaled?: number } | undefined
      // On a difference, name the rows (pair, kind, key) so a failed run can be read without rerunning it.
      const named = s?.sample?.length ? ` [${s.sample.map((d) => `${d.pair} ${d.kind} ${d.key}`).join('; ')}]${s.journaled ? ` (${s.journaled} still journaled)` : ''}` : ''
      const detail = clean ? `clean${s?.rowsCompared !== undefined ? `, ${s.rowsCompared} rows compared` : ''}` : `exit ${r.code}: ${lastLine(r.stderr) || r.stdout.trim().slice(0, 300)}${named}`
      return { value: clean, ok: clean, detail }
    })

  const move = (label: string, percent?: number) =>
    step(`cutover advance -> ${label}`, async () => {
      // A refusal can be momentary under traffic (a journal row not yet cleared): ask again a few
      // times, as an operator would; the guards themselves are never overridden.
      let r: MoveResult
      const refusals: string[] = []
      for (let attempt = 1; ; attempt++) {
        // The CLI's defaults: each attempt holds writes at most 1 s, an attempt over it reopens them and is retried.
        r = await moveStage(rt!, { kind: 'advance', ...(percent !== undefined ? { percent } : {}), reason: 'shardkit demo rehearsal', actor: 'shardkit-demo' })
        for (const f of r.fenceMsByAttempt) if (f !== null) fences.push(Math.round(f))
        if (r.outcome !== 'refused' || attempt >= 5) break
        refusals.push(r.reasons.join('; '))
        await sleep(500)
      }
      const ok = r.outcome === 'done'
      if (ok && r.to?.stage === 'write-shards') journalSettleMs = await journalSettle(rt!)
      if (refusals.length > 0) o.log(`  refused ${refusals.length} time(s) first: ${refusals.at(-1)}`)
      if (ok && r.to) stageEntered.push([percent !== undefined ? `${r.to.stage} ${r.to.readPercent}%` : r.to.stage, performance.now()])
      // The fence that matters is the write-primary switch (read-shards -> write-shards).
      if (r.fenceMs !== null && r.to?.stage === 'write-shards') fenceMs = Math.round(r.fenceMs)
      const tries = r.attempts > 1 ? ` (attempt ${r.attempts}; earlier attempts held ${r.fenceMsByAttempt.slice(0, -1).map((f) => `${Math.round(f ?? 0)} ms`).join(', ')})` : ''
      const settled = ok && r.to?.stage === 'write-shards' ? `; journal owed nothing older than 1 s after ${journalSettleMs} ms` : ''
      return { value: r, ok, detail: ok ? `now ${r.to?.stage}${r.to?.stage === 'read-shards' ? ` at ${r.to.readPercent}%` : ''} (v${r.to?.version})${r.fenceMs !== null ? `, fence held writes ${Math.round(r.fenceMs)} ms` : ''}${tries}${settled}` : `${r.outcome}: ${r.reasons.join('; ')}` }
    })

  try {
    await step('check servers', async () => {
      await checkServers(o.mysqlUrl, o.redisUrl)
      return { value: undefined, ok: true, detail: `databases under ${prefix}, files in ${dir}` }
    })
    const admin = adminPool(o.mysqlUrl)
    let seeded: Awaited<ReturnType<typeof seedLegacy>>
    try {
      const legacy = await createLegacy(admin, prefix)
      seeded = await step(`seed legacy with ${o.orders} orders`, async () => {
        const r = await seedLegacy(admin, legacy.database, legacy.table, o.orders)
        return { value: r, ok: r.rows === o.orders, detail: `${r.rows} rows, ${r.users} users, ${r.merchants} merchants` }
      })
      const ceiling = await legacyCeiling(admin, legacy.database, legacy.table)
      const written = writeDemoConfig(dir, { prefix, mysqlUrl: o.mysqlUrl, redisUrl: o.redisUrl, legacyDatabase: legacy.database, idCeiling: ceiling })
      configPath = written.path
      rt = openRuntime(written.config, { logger: silentLogger })
    } finally {
      await admin.end()
    }
    await step('provision 120 + 120 shard tables', async () => {
      const r = await provision(rt!)
      return { value: r, ok: r.conflicts.length === 0, detail: `${r.created.length} objects created, ${r.conflicts.length} conflicts` }
    })
    if (o.serve) statusServer = await startDemoStatusPage(configPath, o.serve, o.log)
    eventsCheck = await step('start the event consumer and the outbox relay', async () => {
      const c = await startEventsCheck(rt!, { service: `${prefix}check`, log: o.log })
      killSwitch = await startRelayKillSwitch(join(dir, 'relay-hook.sock'))
      startRelay(killSwitch.env)
      return { value: c, ok: true, detail: `queues ${prefix}check.order-events.00-11 on exchange ${rt!.config.events.exchange}; relay logs in ${dir}` }
    })
    await step(`start ${o.instances ?? 2} order-service instances (events outbox)`, async () => {
      for (let i = 1; i <= (o.instances ?? 2); i++) services.push(await startService(configPath, `${prefix}svc${i}`, join(dir, `service-${i}.log`), 60_000, ['--events', 'outbox']))
      return { value: undefined, ok: true, detail: services.map((s) => s.url).join(', ') }
    })
    stageEntered.push(['legacy', performance.now()])
    loadChild = spawnTs('examples/load/main.ts', ['--rps', String(o.rps), '--duration', '0', '--json', '--ids-file', idsFile, '--users', String(seeded.users), '--merchants', String(seeded.merchants), ...services.flatMap((s) => ['--url', s.url])], { stderrTo: join(dir, 'load.log') })
    loadDone = finished(loadChild)
    o.log(`> load: ${o.rps} requests/s over ${services.length} instances`)
    await sleep((o.warmupS ?? 3) * 1000)

    await move('dual-write')
    await step('backfill', async () => {
      const r = await shardctl(configPath, ['backfill'], { progress: o.progress ?? false })
      const s = r.json as { rowsCopied?: number; dimensions?: Record<string, { rowsCopied?: number }> } | undefined
      if (r.code !== 0) keepStderr(dir, 'backfill', r.stderr)
      return { value: r, ok: r.code === 0, detail: r.code === 0 ? `done${s ? `: ${JSON.stringify(s).slice(0, 200)}` : ''}` : `exit ${r.code}: ${lastLine(r.stderr) || r.stdout.trim().slice(0, 300)}` }
    })
    await step('kill -9 the relay between publish and mark', async () => {
      startRelay() // the standby: it takes the outbox leases 3 s after the holder dies
      const held = await killSwitch!.arm(15_000)
      relays[0]!.child.kill('SIGKILL')
      const r = await relays[0]!.done
      const what = held ? `killed after the broker confirmed ${held.count} event(s) of ${held.outbox}, before marking them: the standby sends them again` : 'no publish within 15 s; killed anyway'
      return { value: undefined, ok: r.signal === 'SIGKILL', detail: what }
    })
    await verify('after backfill')
    await move('shadow-read')
    await verify('shadow-read')
    for (const pct of [1, 10, 50, 100]) {
      await move('read-shards', pct)
      await verify(`read-shards ${pct}%`)
    }
    await move('write-shards')
    await verify('write-shards')
    await move('shards')
  } catch (err) {
    problems.push(err instanceof StepFailed ? err.message : `unexpected: ${(err as Error).stack ?? String(err)}`)
  } finally {
    if (stageEntered.length > 0) stageEntered.push(['end', performance.now()])
    if (loadChild && loadDone) {
      await sleep(1_000)
      loadChild.kill('SIGTERM')
      const r = await loadDone
      try {
        load = JSON.parse(r.stdout) as LoadReport
      } catch {
        problems.push(`the load generator gave no report (exit ${r.code}); see ${join(dir, 'load.log')}`)
      }
    }
    for (const s of services) {
      const code = await s.stop()
      if (code !== 0) problems.push(`order service ${s.instanceId} exited with code ${code} on SIGTERM; see ${dir}`)
    }
  }

  if (problems.length === 0) {
    try {
      // The services are gone, and their drainers with them: replay what their journals still owe,
      // as the runbook says, before the last verify.
      await step('dualwrite drain (traffic stopped)', async () => {
        const r = await shardctl(configPath, ['dualwrite', 'drain'])
        if (r.code !== 0) keepStderr(dir, 'drain', r.stderr)
        const summary = r.json && typeof r.json === 'object' ? JSON.stringify(r.json).slice(0, 200) : lastLine(r.stdout)
        return { value: r.code, ok: r.code === 0, detail: r.code === 0 ? summary || 'journal empty' : `exit ${r.code}: ${lastLine(r.stderr)}` }
      })
      await verify('final, traffic stopped')
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  // Orders the walk never copied are expected to be missing: check only a completed walk.
  if (rt && load && problems.length === 0) {
    const ids = readIds(idsFile)
    try {
      presence = await step('every acknowledged order exactly once per dimension', async () => {
        const p = await checkExactlyOnce(rt!, ids)
        const d = p.dimensions.map((x) => `${x.dimension} ${x.exactlyOnce}/${x.checked}${x.missing.length ? ` missing e.g. ${x.missing[0]}` : ''}${x.duplicated.length ? ` duplicated e.g. ${x.duplicated[0]}` : ''}${x.misplaced.length ? ` misplaced e.g. ${x.misplaced[0]}` : ''}`).join(', ')
        return { value: p, ok: p.ok, detail: `${p.acknowledged} acknowledged; ${d}; ${p.inLegacy} also in legacy` }
      })
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  if (rt && load && eventsCheck && problems.length === 0) {
    const ids = readIds(idsFile)
    try {
      events = await step("every acknowledged order's events once, in order", async () => {
        const e = await eventsCheck!.settle(ids)
        const c = e.consumer
        const why = [...e.incomplete.slice(0, 1).map((x) => `missing events e.g. ${x}`), ...e.disordered.slice(0, 1).map((x) => `e.g. ${x}`)].join('; ')
        return { value: e, ok: e.ok, detail: `${e.exactlyOnceInOrder}/${e.acknowledged} orders; ${e.handled} events handled, ${c.duplicates} duplicate deliveries dropped, ${c.gaps} gaps, ${c.waited} out of order${why ? `; ${why}` : ''}` }
      })
    } catch (err) {
      problems.push((err as Error).message)
    }
  }
  for (const [i, r] of relays.entries()) {
    if (r.child.exitCode !== null || r.child.signalCode !== null) continue
    r.child.kill('SIGTERM')
    const x = await r.done
    if (x.code !== 0) problems.push(`events relay ${i + 1} exited with ${x.code ?? x.signal} on SIGTERM; see ${r.log}`)
  }
  await killSwitch?.close()
  await eventsCheck?.close(!o.keep).catch((err: unknown) => problems.push(`closing the event consumer: ${(err as Error).message}`))
  const longest = Math.max(0, ...fences)
  if (longest > 1_000) problems.push(`a fence held writes ${longest} ms (expected at most 1000 ms per attempt)`)
  if (journalSettleMs !== null && journalSettleMs > 5_000) problems.push(`after the write switch the journal still owed entries for ${journalSettleMs} ms (expected under 5000 ms)`)
  if (load && load.errors > 0) problems.push(`${load.errors} failed requests (expected 0); e.g. ${load.failures.slice(0, 3).map((f) => `${f.op} ${f.status} ${f.error.slice(0, 120)}`).join(' | ')}`)
  await statusServer?.close()
  await rt?.close()
  if (!o.keep) {
    try {
      removed = await removeFleet(o.mysqlUrl, o.redisUrl, prefix)
      // A failed run keeps its logs (services, relays, failed children's stderr) to be read.
      if (problems.length === 0) rmSync(dir, { recursive: true, force: true })
      else problems.push(`logs kept in ${dir}`)
    } catch (err) {
      problems.push(`cleanup failed: ${(err as Error).message}; drop databases ${prefix}* by hand`)
    }
  }
  const stageMs: Record<string, number> = {}
  for (let i = 0; i + 1 < stageEntered.length; i++) stageMs[stageEntered[i]![0]] = Math.round(stageEntered[i + 1]![1] - stageEntered[i]![1])
  return { prefix, configPath, orders: o.orders, rps: o.rps, steps, stageMs, verifies, fenceMs, fences, journalSettleMs, load, presence, events, removed, totalMs: Math.round(performance.now() - t0), problems, ok: problems.length === 0 }
}

class StepFailed extends Error {}

/** Time until the journal owes nothing older than 1 s (every write leaves an entry for the few ms its copies take); at most 30 s. */
async function journalSettle(rt: Runtime): Promise<number> {
  const t0 = performance.now()
  while (performance.now() - t0 < 30_000) {
    const d = await readJournalDepth(rt, { minAgeMs: 1_000 }).catch(() => undefined)
    if (d && d.total === 0) break
    await sleep(100)
  }
  return Math.round(performance.now() - t0)
}

/** `--serve`: the status page of the rehearsal's fleet, on a runtime of its own (read-only). */
async function startDemoStatusPage(configPath: string, listen: string, log: (l: string) => void): Promise<{ close(): Promise<void> }> {
  const { loadConfig } = await import('../../src/config/load.js')
  const { startStatusServer } = await import('../../src/serve/server.js')
  const srt = openRuntime(loadConfig({ path: configPath }).config, { logger: silentLogger })
  const server = await startStatusServer(srt, { listen, intervalMs: 1_000 })
  log(`> status page: ${server.url}/ (open it in a browser to watch the walk)`)
  return {
    async close() {
      await server.close()
      await srt.close()
    },
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/**
 * The line of a child's stderr that says why it failed: the last line, or,
 * when Node crashed (its footer `Node.js v20...` is the last line), the first
 * line that names an error, so the report does not read "Node.js v20.20.2".
 */
function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter(Boolean)
  const last = lines.at(-1) ?? ''
  if (/^Node\.js v\d/.test(last)) {
    const named = lines.find((l) => /\b[A-Z]\w*Error\b|\bcode: '/.test(l))
    if (named) return `crashed: ${named.trim().slice(0, 280)}`
  }
  return last.slice(0, 300)
}

/** Keeps a failed child's whole stderr beside the run's other logs (the dir is kept when the run fails). */
function keepStderr(dir: string, name: string, text: string): void {
  try {
    writeFileSync(join(dir, `${name.replace(/[^\w.-]+/g, '_')}.stderr`), text, { mode: 0o600 })
  } catch {
    // The report still carries the line that matters.
  }
}

function readIds(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean)
  } catch {
    return []
  }
}
