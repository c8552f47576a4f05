/**
 * The faults the soak injects: one entry per fault in `FAULTS` (name, what it
 * does, `run`, which injects the fault into the running rehearsal and then
 * performs the documented recovery: restart, resume, drain, heal), resolving
 * with whether the system came back. Adding a fault is one function and one
 * entry in the table.
 * - `service-kill`: SIGKILL an order-service instance between a primary commit and its copies, start a new one on the same port;
 * - `legacy-fault`: the TCP proxy in front of legacy delays (500 ms) or cuts it for a few seconds;
 * - `backfill-kill`: SIGKILL `shardctl backfill --restart` at a random phase hook, then resume it to the end;
 * - `drain`: SIGKILL `shardctl dualwrite drain` at a random replayed entry while traffic flows, then rerun it;
 * - `redis-flush`: the consumers' Redis loses every key (FLUSHALL, or SIGKILL and restart: it keeps nothing on disk);
 * - `queue-full`: one consumer queue held full for 30 s (its consumer stopped, the queue filled to its cap), then its consumer restarted;
 * - `locking-read`, `mdl-stall`, `host-stop`: database stalls (db-stalls.ts): a long FOR UPDATE over a shard
 *   table, an ALTER queued behind an open transaction, the extra shard host SIGSTOPped for 3 s.
 */
import { join } from 'node:path'
import type { TcpProxy } from '../../test/support/tcp-proxy.js'
import { HookServer } from '../../test/faults/support/hook-server.js'
import { finished, shardctl, spawnTs, startService, type ServiceInstance } from '../demo/processes.js'
import type { Connection } from 'rabbitmq-client'
import { SOAK_QUEUE_CAP, type SoakConsumers } from './events.js'
import { injectStall, type DbStallKind, type StallTarget } from './db-stalls.js'

export const FAULT_KINDS = ['service-kill', 'legacy-fault', 'backfill-kill', 'drain', 'redis-flush', 'queue-full', 'locking-read', 'mdl-stall', 'host-stop'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** What one injected fault did. */
export interface FaultRecord {
  readonly kind: FaultKind
  readonly at: string
  readonly survived: boolean
  readonly detail: string
}

/** The live pieces a fault acts on. */
export interface FaultTarget {
  readonly configPath: string
  readonly dir: string
  readonly prefix: string
  readonly proxy: TcpProxy
  /** Instances by slot; a killed one is replaced in place (same port, new instance id). */
  readonly services: ServiceInstance[]
  readonly random: () => number
  readonly log: (line: string) => void
  /** The hook server the services announce their phase points to. */
  readonly hooks: HookServer
  /** The environment services start with (it names the hook socket). */
  readonly serviceEnv: NodeJS.ProcessEnv
  /** The consuming services (their private Redis and queues). */
  readonly consumers: SoakConsumers
  /** A broker connection the soak owns (the queue-full fault publishes fillers on it). */
  readonly amqp: Connection
  /** How long the queue-full fault holds the queue full (default 30 s). */
  readonly queueFullMs?: number
  /** The shard tables and the extra host the database stalls act on. */
  readonly stalls: StallTarget
}

const stall = (kind: DbStallKind) => (t: FaultTarget) => injectStall(kind, t.stalls)

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
let generation = 0

/**
 * SIGKILLs the instance that next announces `dualwrite.primary-committed`
 * (its primary committed, its copies not yet made: the drain must finish
 * them), or a random instance when no write arrives within 10 s; then starts
 * its replacement on the same port and waits until it is ready.
 */
export async function killService(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  let slot = -1
  let where = 'at a random moment'
  const arrival = await t.hooks.waitFor('dualwrite.primary-committed', { timeoutMs: 10_000 }).catch(() => undefined)
  if (arrival) {
    slot = t.services.findIndex((s) => s.child.pid === arrival.pid)
    if (slot < 0) arrival.continue()
    else where = `after the primary commit of ${String(arrival.details.op)} ${String(arrival.details.orderId)}, before its copies`
  }
  if (slot < 0) slot = Math.floor(t.random() * t.services.length)
  const victim = t.services[slot]!
  const port = new URL(victim.url).port
  victim.child.kill('SIGKILL')
  await new Promise<void>((r) => (victim.child.exitCode !== null || victim.child.signalCode !== null ? r() : victim.child.once('close', () => r())))
  await sleep(200 + Math.floor(t.random() * 1_500))
  const id = `${t.prefix}svc${slot + 1}g${++generation}`
  try {
    t.services[slot] = await startService(t.configPath, id, join(t.dir, `service-${slot + 1}.log`), 60_000, ['--events', 'outbox', '--port', port], t.serviceEnv)
    return { kind: 'service-kill', at, survived: true, detail: `killed ${victim.instanceId} ${where}; ${id} ready on port ${port}` }
  } catch (err) {
    return { kind: 'service-kill', at, survived: false, detail: `killed ${victim.instanceId} ${where}; restart failed: ${(err as Error).message}` }
  }
}

/** Delays legacy by 500 ms or cuts it for 2-5 s through the proxy, then restores it. */
export async function legacyFault(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const cut = t.random() < 0.5
  const ms = 2_000 + Math.floor(t.random() * 3_000)
  if (cut) t.proxy.cut()
  else t.proxy.delay(500)
  await sleep(ms)
  t.proxy.restore()
  t.proxy.delay(0)
  return { kind: 'legacy-fault', at, survived: true, detail: `legacy ${cut ? 'cut' : 'delayed 500 ms'} for ${ms} ms` }
}

/**
 * Runs `args` as a shardctl child wired to a hook server and SIGKILLs it when
 * it announces `point` for the `nth` time (earlier arrivals go on). Resolves
 * with what happened; the child may finish before that arrival.
 */
async function killAtHook(t: FaultTarget, args: readonly string[], point: string, nth: number): Promise<{ killed: boolean; exit: string }> {
  const hooks = await HookServer.listen()
  try {
    const child = spawnTs('bin/shardctl.ts', ['-c', t.configPath, ...args, '--json'], { env: { ...process.env, SHARDKIT_FAULT_HOOKS: hooks.path! } })
    const done = finished(child)
    let killed = false
    const watch = (async () => {
      for (let i = 1; i <= nth; i++) {
        const at = await hooks.waitFor(point, { timeoutMs: 120_000 })
        if (i < nth) {
          at.continue()
          continue
        }
        process.kill(at.pid, 'SIGKILL')
        killed = true
      }
    })()
    watch.catch(() => undefined)
    const r = await done
    return { killed, exit: r.signal ?? `exit ${r.code}` }
  } finally {
    await hooks.close()
  }
}

const BACKFILL_POINTS = ['backfill.chunk-committed', 'backfill.checkpoint-saved'] as const

/**
 * Starts `backfill --restart` slowed down and SIGKILLs it at a random hook
 * (a chunk committed but its checkpoint not saved, or a checkpoint just
 * saved; the 1st to 4th arrival), then resumes (no --restart) to the end.
 */
export async function killBackfill(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const point = BACKFILL_POINTS[Math.floor(t.random() * BACKFILL_POINTS.length)]!
  const nth = 1 + Math.floor(t.random() * 4)
  const first = await killAtHook(t, ['backfill', '--restart', '--max-rows-per-second', '5000'], point, nth)
  const resumed = await shardctl(t.configPath, ['backfill'])
  const how = first.killed ? `SIGKILLed at ${point} #${nth}` : `finished before ${point} #${nth} (${first.exit})`
  const ok = resumed.code === 0
  return { kind: 'backfill-kill', at, survived: ok, detail: `backfill ${how}; resume exit ${resumed.code}${ok ? '' : `: ${resumed.stderr.trim().split('\n').at(-1) ?? ''}`}` }
}

/**
 * Runs `shardctl dualwrite drain` while the services write and SIGKILLs it
 * after a random number (1-3) of replayed entries, when it gets that far;
 * then drains again, which must exit 0.
 */
export async function drain(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const nth = 1 + Math.floor(t.random() * 3)
  const first = await killAtHook(t, ['dualwrite', 'drain'], 'drain.entry-replayed', nth)
  const r = await shardctl(t.configPath, ['dualwrite', 'drain'])
  const how = first.killed ? `drain SIGKILLed at drain.entry-replayed #${nth}` : `drain ended before entry #${nth} (${first.exit})`
  return { kind: 'drain', at, survived: r.code === 0, detail: `${how}; rerun exit ${r.code}${r.code === 0 ? '' : `: ${r.stderr.trim().split('\n').at(-1) ?? ''}`}` }
}

/**
 * Empties the consumers' Redis: FLUSHALL, or a SIGKILL and restart (half the
 * time each). Both consuming services lose their dedupe and version memory
 * at once; the end check shows what each still guarantees.
 */
export async function redisFlush(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const restart = t.random() < 0.5
  try {
    if (restart) await t.consumers.redis.restart()
    else await t.consumers.redis.flush()
    return { kind: 'redis-flush', at, survived: true, detail: `consumers' Redis ${restart ? 'SIGKILLed and restarted' : 'flushed (FLUSHALL)'}` }
  } catch (err) {
    return { kind: 'redis-flush', at, survived: false, detail: `consumers' Redis ${restart ? 'restart' : 'flush'} failed: ${(err as Error).message}` }
  }
}

/**
 * Stops the consumer of one random queue, fills that queue to its cap with
 * filler messages (not order events: the consumer drops them as malformed),
 * holds it full for 30 s while the relay's publishes to it are refused, then
 * restarts the consumer and waits until the queue is below its cap again.
 */
export async function queueFull(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const services = ['durable', 'redis-only'] as const
  const queues = t.consumers.queues(services[Math.floor(t.random() * services.length)]!)
  const queue = queues[Math.floor(t.random() * queues.length)]!
  const holdMs = t.queueFullMs ?? 30_000
  await t.consumers.pause(queue)
  const pub = t.amqp.createPublisher({ confirm: true, maxAttempts: 1 })
  let fillers = 0
  let refused = false
  try {
    while (!refused && fillers < SOAK_QUEUE_CAP * 2) {
      const batch = await Promise.allSettled(Array.from({ length: 200 }, () => pub.send({ exchange: '', routingKey: queue }, 'soak filler: not an order event')))
      fillers += batch.filter((r) => r.status === 'fulfilled').length
      refused = batch.some((r) => r.status === 'rejected')
    }
  } finally {
    await pub.close()
  }
  const heldFrom = Date.now()
  await sleep(holdMs)
  const { messageCount: atEnd } = await t.amqp.queueDeclare({ queue, passive: true })
  await t.consumers.resume(queue)
  let drained = false
  for (const end = Date.now() + 120_000; Date.now() < end; ) {
    const { messageCount } = await t.amqp.queueDeclare({ queue, passive: true })
    if (messageCount < SOAK_QUEUE_CAP) {
      drained = true
      break
    }
    await sleep(200)
  }
  const heldS = Math.round((Date.now() - heldFrom) / 1000)
  return {
    kind: 'queue-full',
    at,
    survived: refused && drained,
    detail: `${queue} filled with ${fillers} fillers (${refused ? 'cap reached, publishes refused' : 'cap NOT reached'}), held ${heldS} s with ${atEnd} messages; consumer restarted, ${drained ? 'queue below its cap again' : 'queue still full after 120 s'}`,
  }
}

/** One fault: its name (for `--faults`), what it does, and the function that injects and heals it. */
export interface FaultEntry {
  readonly name: FaultKind
  readonly summary: string
  readonly run: (t: FaultTarget) => Promise<FaultRecord>
}

/** Every fault the soak knows, in `--help` order. */
export const FAULTS: readonly FaultEntry[] = [
  { name: 'service-kill', summary: 'SIGKILL an order-service instance between a primary commit and its copies; restart it', run: killService },
  { name: 'legacy-fault', summary: 'delay (500 ms) or cut legacy for 2-5 s through the TCP proxy', run: legacyFault },
  { name: 'backfill-kill', summary: 'SIGKILL backfill --restart at a random phase hook; resume it', run: killBackfill },
  { name: 'drain', summary: 'SIGKILL dualwrite drain at a replayed entry while traffic flows; rerun it', run: drain },
  { name: 'redis-flush', summary: "the consumers' Redis loses every key (FLUSHALL, or SIGKILL and restart)", run: redisFlush },
  { name: 'queue-full', summary: 'one consumer queue held full for 30 s (consumer stopped, filled to its cap); consumer restarted', run: queueFull },
  { name: 'locking-read', summary: 'a session holds SELECT ... FOR UPDATE over a whole shard table for 3-5 s', run: stall('locking-read') },
  { name: 'mdl-stall', summary: 'ALTER TABLE ... FORCE queued behind an open transaction on a shard table: everything queues behind it for 3-5 s', run: stall('mdl-stall') },
  { name: 'host-stop', summary: 'SIGSTOP the extra shard host (a real mariadbd) for 3 s, then SIGCONT', run: stall('host-stop') },
]

/** Injects one fault of `kind`. */
export function inject(kind: FaultKind, t: FaultTarget): Promise<FaultRecord> {
  const f = FAULTS.find((x) => x.name === kind)
  if (!f) throw new Error(`unknown fault ${kind}`)
  return f.run(t)
}
