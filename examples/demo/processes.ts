/**
 * Child processes of the rehearsal: order-service instances, the load
 * generator and shardctl, each `node --import tsx <file>` so one pid is the
 * process itself (signals reach it directly). Stops only the children it
 * started, by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, resolve } from 'node:path'

/** The repository root (examples/demo/../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Spawns `node --import tsx <script> ...args` from the repo root. */
export function spawnTs(script: string, args: readonly string[], opts: { stderrTo?: string | 'inherit'; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, script), ...args], {
    cwd: REPO_ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', opts.stderrTo === 'inherit' ? 'inherit' : 'pipe'],
  })
  if (opts.stderrTo && opts.stderrTo !== 'inherit') child.stderr!.pipe(createWriteStream(opts.stderrTo, { flags: 'a' }))
  return child
}

/** Collects a child's stdout and waits for it to exit. */
export function finished(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout?.on('data', (c: Buffer) => out.push(c))
  child.stderr?.on('data', (c: Buffer) => err.push(c))
  return new Promise((res, rej) => {
    child.once('error', rej)
    child.once('close', (code, signal) => res({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }))
  })
}

/** A running order-service instance. */
export interface ServiceInstance {
  readonly url: string
  readonly instanceId: string
  readonly child: ChildProcess
  /** Graceful stop (SIGTERM): resolves with the exit code. */
  stop(): Promise<number | null>
}

/** Starts one instance on a free port and waits until /readyz answers 200. */
export async function startService(configPath: string, instanceId: string, logFile: string, timeoutMs = 60_000, extraArgs: readonly string[] = [], env?: NodeJS.ProcessEnv): Promise<ServiceInstance> {
  const child = spawnTs('examples/order-service/main.ts', ['--config', configPath, '--port', '0', '--instance-id', instanceId, '--log-level', 'warn', ...extraArgs], { stderrTo: logFile, ...(env ? { env } : {}) })
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)))
  const url = await new Promise<string>((res, rej) => {
    let buf = ''
    const timer = setTimeout(() => rej(new Error(`order service ${instanceId} did not start within ${timeoutMs} ms; see ${logFile}`)), timeoutMs)
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString('utf8')
      const line = buf.split('\n').find((l) => l.includes('"listening"'))
      if (line) {
        clearTimeout(timer)
        res((JSON.parse(line) as { listening: string }).listening)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      rej(new Error(`order service ${instanceId} exited with code ${code} while starting; see ${logFile}`))
    })
  })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false)
    if (ok) break
    if (Date.now() > deadline) {
      child.kill('SIGTERM')
      throw new Error(`order service ${instanceId} at ${url} did not become ready within ${timeoutMs} ms; see ${logFile}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    instanceId,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    },
  }
}

/** Runs `shardctl <args> -c <config> --json` and parses its stdout. */
export async function shardctl(configPath: string, args: readonly string[], opts: { progress?: boolean } = {}): Promise<{ code: number | null; json: unknown; stdout: string; stderr: string }> {
  const child = spawnTs('bin/shardctl.ts', ['-c', configPath, ...args, '--json'], opts.progress ? { stderrTo: 'inherit' } : {})
  const r = await finished(child)
  let json: unknown
  try {
    json = JSON.parse(r.stdout)
  } catch {
    json = undefined
  }
  return { code: r.code, json, stdout: r.stdout, stderr: r.stderr }
}
