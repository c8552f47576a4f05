/**
 * The faults the soak injects, one function per kind. Each injects its fault
 * into the running rehearsal and then performs the documented recovery
 * (restart, resume, drain), resolving with whether the system came back:
 * - `service-kill`: SIGKILL an order-service instance between a primary commit and its copies, start a new one on the same port;
 * - `legacy-fault`: the TCP proxy in front of legacy delays (500 ms) or cuts it for a few seconds;
 * - `backfill-kill`: SIGKILL `shardctl backfill --restart` at a random phase hook, then resume it to the end;
 * - `drain`: SIGKILL `shardctl dualwrite drain` at a random replayed entry while traffic flows, then rerun it.
 */
import { join } from 'node:path'
import type { TcpProxy } from '../../test/support/tcp-proxy.js'
import { HookServer } from '../../test/faults/support/hook-server.js'
import { finished, shardctl, spawnTs, startService, type ServiceInstance } from '../demo/processes.js'

export const FAULT_KINDS = ['service-kill', 'legacy-fault', 'backfill-kill', 'drain'] as const
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
}

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

/** Injects one fault of `kind`. */
export function inject(kind: FaultKind, t: FaultTarget): Promise<FaultRecord> {
  switch (kind) {
    case 'service-kill':
      return killService(t)
    case 'legacy-fault':
      return legacyFault(t)
    case 'backfill-kill':
      return killBackfill(t)
    case 'drain':
      return drain(t)
  }
}
