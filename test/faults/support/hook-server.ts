/**
 * The test side of the phase hooks (src/runtime/phase-hooks.ts). A
 * HookServer receives every point an operation announces, either from a
 * child shardctl over a unix socket (`SHARDKIT_FAULT_HOOKS`, see
 * src/cli/fault-hooks.ts) or in-process (setPhaseHandler). A point nobody
 * waits for continues at once; a point a test waits for (or asked to hold)
 * is held until the test calls `continue()` or `fail()`, or kills the process
 * that announced it.
 *
 *   const hooks = await HookServer.listen()
 *   const child = spawnShardctl([...], { hooks: hooks.path })
 *   const at = await hooks.waitFor('cutover.fences-raised')
 *   process.kill(at.pid, 'SIGKILL')
 */
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setPhaseHandler, type PhaseDetails, type PhaseHandler } from '../../../src/runtime/phase-hooks.js'

/** One announced point, held for the test. */
export interface Arrival {
  readonly point: string
  readonly details: PhaseDetails
  /** The announcing process (this process for in-process hooks). */
  readonly pid: number
  /** Lets the operation go on. */
  continue(): void
  /** Makes the phase throw (in the operation) with this text. */
  fail(message?: string): void
}

type Match = (a: { point: string; details: PhaseDetails }) => boolean
interface Waiter {
  readonly match: Match
  readonly resolve: (a: Arrival) => void
}

function matcher(point: string, where?: (d: PhaseDetails) => boolean): Match {
  return (a) => a.point === point && (where ? where(a.details) : true)
}

/** A hook receiver; see the file comment. */
export class HookServer {
  /** Every point seen, in arrival order (`point` only). */
  readonly seen: string[] = []
  private readonly waiters: Waiter[] = []
  private readonly holds: Match[] = []
  private readonly held: Arrival[] = []
  private closer: () => Promise<void> = async () => undefined

  private constructor(readonly path: string | undefined) {}

  /** A unix-socket server for child processes: pass `path` as SHARDKIT_FAULT_HOOKS. */
  static async listen(): Promise<HookServer> {
    const dir = mkdtempSync(join(tmpdir(), 'shardkit-hooks-'))
    const path = join(dir, 'hooks.sock')
    const hs = new HookServer(path)
    const sockets = new Set<net.Socket>()
    const server = net.createServer((sock) => {
      sockets.add(sock)
      sock.on('close', () => sockets.delete(sock))
      sock.on('error', () => undefined)
      sock.setEncoding('utf8')
      let buf = ''
      sock.on('data', (chunk: string) => {
        buf += chunk
        const nl = buf.indexOf('\n')
        if (nl < 0) return
        const msg = JSON.parse(buf.slice(0, nl)) as { point: string; details: PhaseDetails; pid: number }
        buf = buf.slice(nl + 1)
        let answered = false
        const answer = (line: string) => {
          if (answered) return
          answered = true
          if (!sock.destroyed) sock.end(line + '\n')
        }
        hs.arrive({ point: msg.point, details: msg.details, pid: msg.pid, continue: () => answer('continue'), fail: (m = 'injected') => answer(`fail ${m}`) })
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => resolve())
    })
    hs.closer = async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      rmSync(dir, { recursive: true, force: true })
    }
    return hs
  }

  /** In-process hooks: installs a phase handler in this process until close(). */
  static inProcess(): HookServer {
    const hs = new HookServer(undefined)
    const handler: PhaseHandler = (point, details) =>
      new Promise<void>((resolve, reject) => {
        let answered = false
        const once = (f: () => void) => () => {
          if (!answered) {
            answered = true
            f()
          }
        }
        hs.arrive({ point, details, pid: process.pid, continue: once(resolve), fail: (m = 'injected') => once(() => reject(new Error(`fault injected at ${point}: ${m}`)))() })
      })
    const prev = setPhaseHandler(handler)
    hs.closer = async () => {
      setPhaseHandler(prev)
    }
    return hs
  }

  /** Holds the next arrival of `point` (matching `where`) even if nobody waits yet; take it with waitFor. */
  hold(point: string, where?: (d: PhaseDetails) => boolean): void {
    this.holds.push(matcher(point, where))
  }

  /**
   * Resolves with the next arrival of `point` (or one already held for it),
   * held until the test continues, fails or kills it.
   * @throws after `timeoutMs` (default 60 s), listing the points seen
   */
  waitFor(point: string, opts: { where?: (d: PhaseDetails) => boolean; timeoutMs?: number } = {}): Promise<Arrival> {
    const match = matcher(point, opts.where)
    const i = this.held.findIndex((a) => match(a))
    if (i >= 0) return Promise.resolve(this.held.splice(i, 1)[0]!)
    return new Promise<Arrival>((resolve, reject) => {
      const timer = setTimeout(() => {
        const w = this.waiters.indexOf(waiter)
        if (w >= 0) this.waiters.splice(w, 1)
        reject(new Error(`hook ${point} did not arrive within ${opts.timeoutMs ?? 60_000} ms; seen: ${this.seen.join(', ') || 'nothing'}`))
      }, opts.timeoutMs ?? 60_000)
      // A wait alone never keeps the process alive (the soak's waits can outlive their child).
      timer.unref()
      const waiter: Waiter = {
        match,
        resolve: (a) => {
          clearTimeout(timer)
          resolve(a)
        },
      }
      this.waiters.push(waiter)
    })
  }

  /** Lets every held arrival go on and stops holding anything. */
  releaseAll(): void {
    this.holds.length = 0
    for (const a of this.held.splice(0)) a.continue()
  }

  /** Releases everything held, then stops listening (or uninstalls the in-process handler). */
  async close(): Promise<void> {
    this.releaseAll()
    await this.closer()
  }

  private arrive(a: Arrival): void {
    this.seen.push(a.point)
    const w = this.waiters.findIndex((x) => x.match(a))
    if (w >= 0) {
      this.waiters.splice(w, 1)[0]!.resolve(a)
      return
    }
    const h = this.holds.findIndex((m) => m(a))
    if (h >= 0) {
      this.holds.splice(h, 1)
      this.held.push(a)
      return
    }
    a.continue()
  }
}
