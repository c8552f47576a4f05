/**
 * Starts test/support/idgen-child.ts as a separate process and collects what
 * it says: JSON events and the ids it issued.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { IdChildArgs } from './idgen-child.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = fileURLToPath(new URL('./idgen-child.ts', import.meta.url))

export interface ChildEvent {
  readonly event: 'open' | 'done' | 'error'
  readonly worker?: number
  readonly code?: string
  readonly message?: string
  readonly highWaterMs?: number
}

export interface IdChild {
  readonly proc: ChildProcess
  /** Every id the child printed, in order. */
  readonly ids: string[]
  readonly events: ChildEvent[]
  /** Resolves with the first event of that kind (or rejects if the child exits first). */
  waitFor(event: ChildEvent['event']): Promise<ChildEvent>
  /** Resolves once at least `n` ids arrived. */
  waitForIds(n: number): Promise<void>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly stderr: () => string
}

export function spawnIdChild(args: IdChildArgs): IdChild {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  const ids: string[] = []
  const events: ChildEvent[] = []
  let err = ''
  const listeners = new Set<() => void>()
  const notify = (): void => {
    for (const l of [...listeners]) l()
  }
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    if (line.startsWith('{')) events.push(JSON.parse(line) as ChildEvent)
    else if (line.length > 0) ids.push(line)
    notify()
  })
  let done = false
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => {
      done = true
      notify()
      resolve({ code, signal })
    }),
  )
  const until = <T>(check: () => T | undefined, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const l = (): void => {
        const v = check()
        if (v !== undefined) {
          listeners.delete(l)
          resolve(v)
        } else if (done) {
          listeners.delete(l)
          reject(new Error(`child ${proc.pid} exited before ${what}; events ${JSON.stringify(events)}; stderr: ${err.slice(-2000)}`))
        }
      }
      listeners.add(l)
      l()
    })
  return {
    proc,
    ids,
    events,
    exited,
    stderr: () => err,
    waitFor: (event) => until(() => events.find((e) => e.event === event || e.event === 'error'), `event ${event}`),
    waitForIds: (n) => until(() => (ids.length >= n ? true : undefined), `${n} ids`).then(() => undefined),
  }
}
