/**
 * The faults the soak injects, one function per kind. Each injects its fault
 * into the running rehearsal and then performs the documented recovery
 * (restart, resume, drain), resolving with whether the system came back:
 * - `service-kill`: SIGKILL one order-service instance, start a new one on the same port;
 * - `legacy-fault`: the TCP proxy in front of legacy delays (500 ms) or cuts it for a few seconds;
 * - `backfill-kill`: SIGKILL a running `shardctl backfill --restart`, then resume it to the end;
 * - `drain`: a `shardctl dualwrite drain` run while traffic flows.
 */
import { join } from 'node:path'
import type { TcpProxy } from '../../test/support/tcp-proxy.js'
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
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
let generation = 0

/** SIGKILL a random instance, then start its replacement on the same port and wait until it is ready. */
export async function killService(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const slot = Math.floor(t.random() * t.services.length)
  const victim = t.services[slot]!
  const port = new URL(victim.url).port
  victim.child.kill('SIGKILL')
  await new Promise<void>((r) => (victim.child.exitCode !== null || victim.child.signalCode !== null ? r() : victim.child.once('close', () => r())))
  await sleep(200 + Math.floor(t.random() * 1_500))
  const id = `${t.prefix}svc${slot + 1}g${++generation}`
  try {
    t.services[slot] = await startService(t.configPath, id, join(t.dir, `service-${slot + 1}.log`), 60_000, ['--events', 'outbox', '--port', port])
    return { kind: 'service-kill', at, survived: true, detail: `killed ${victim.instanceId}, ${id} ready on port ${port}` }
  } catch (err) {
    return { kind: 'service-kill', at, survived: false, detail: `killed ${victim.instanceId}; restart failed: ${(err as Error).message}` }
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

/** Starts `backfill --restart` slowed down, SIGKILLs it after 1-4 s, then resumes (no --restart) to the end. */
export async function killBackfill(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const child = spawnTs('bin/shardctl.ts', ['-c', t.configPath, 'backfill', '--restart', '--max-rows-per-second', '5000', '--json'])
  const done = finished(child)
  await sleep(1_000 + Math.floor(t.random() * 3_000))
  const running = child.exitCode === null && child.signalCode === null
  if (running) child.kill('SIGKILL')
  const first = await done
  const resumed = await shardctl(t.configPath, ['backfill'])
  const how = running ? `SIGKILLed (${first.signal ?? first.code})` : `finished before the kill (exit ${first.code})`
  const ok = resumed.code === 0
  return { kind: 'backfill-kill', at, survived: ok, detail: `backfill ${how}; resume exit ${resumed.code}${ok ? '' : `: ${resumed.stderr.trim().split('\n').at(-1) ?? ''}`}` }
}

/** Runs `shardctl dualwrite drain` while the services write. */
export async function drain(t: FaultTarget): Promise<FaultRecord> {
  const at = new Date().toISOString()
  const r = await shardctl(t.configPath, ['dualwrite', 'drain'])
  return { kind: 'drain', at, survived: r.code === 0, detail: `exit ${r.code}${r.code === 0 ? '' : `: ${r.stderr.trim().split('\n').at(-1) ?? ''}`}` }
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
