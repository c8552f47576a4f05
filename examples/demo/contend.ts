/**
 * Busy-loop processes beside a run (`--contend N` of the demo and the soak):
 * each is `sh -c 'while :; do :; done'`, a CPU burner the operating system
 * schedules against the servers, the services and the switch. They are
 * killed with their group when the run ends, and by the OS if it dies.
 */
import { spawn, type ChildProcess } from 'node:child_process'

/** Starts `n` busy loops. */
export function startBusyLoops(n: number): ChildProcess[] {
  const out: ChildProcess[] = []
  for (let i = 0; i < n; i++) {
    const c = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore', detached: false })
    c.unref()
    out.push(c)
  }
  const stop = () => stopBusyLoops(out)
  process.once('exit', stop)
  return out
}

/** Stops them (idempotent). */
export function stopBusyLoops(loops: readonly ChildProcess[]): void {
  for (const c of loops) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
}
