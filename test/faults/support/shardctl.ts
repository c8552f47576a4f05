/**
 * Runs the real CLI (bin/shardctl.ts through tsx, as test/e2e does) as a
 * child process, optionally wired to a HookServer, so a test can kill it at
 * a phase point.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..', '..')

export interface CliRun {
  readonly child: ChildProcess
  /** Resolves when the process is gone: exit code (null when killed), signal, output. */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
}

/** Starts `shardctl -c <configPath> ...args`; `hooks` is a HookServer socket path. */
export function spawnShardctl(configPath: string, args: readonly string[], opts: { hooks?: string; env?: Record<string, string> } = {}): CliRun {
  const env: Record<string, string | undefined> = { ...process.env, SHARDKIT_ACTOR: 'fault-test', SHARDKIT_LOG_LEVEL: 'warn', ...opts.env }
  if (opts.hooks) env.SHARDKIT_FAULT_HOOKS = opts.hooks
  else delete env.SHARDKIT_FAULT_HOOKS
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', configPath, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, done }
}

/** Runs shardctl to the end (no hooks) and parses `--json` stdout when there is any. */
export async function runShardctl(configPath: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; json: any }> {
  const r = await spawnShardctl(configPath, args).done
  let json: any
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined
  } catch {
    json = undefined
  }
  return { ...r, json }
}
