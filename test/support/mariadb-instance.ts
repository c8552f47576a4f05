/**
 * A real extra MariaDB server for tests that must lose a "physical host":
 * its own data directory and port on 127.0.0.1, root without a password,
 * started, killed (-9), stopped and restarted by the test.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { promisify } from 'node:util'
import mysql from 'mysql2/promise'

const run = promisify(execFile)

export interface MariadbInstance {
  readonly port: number
  readonly url: string
  readonly dataDir: string
  readonly running: boolean
  /** Starts (or restarts) the server on the same port and data; resolves when it answers. */
  start(): Promise<void>
  /** SIGKILL: the host dies mid-traffic. */
  kill(): Promise<void>
  /** SIGTERM and wait: a clean shutdown. */
  stop(): Promise<void>
  /** SIGSTOP: the host hangs, connections stay open, nothing answers. */
  pause(): void
  /** SIGCONT after `pause()`. */
  resume(): void
  /** Stops the server and removes its data directory. Idempotent. */
  destroy(): Promise<void>
}

function findBinary(names: string[]): string {
  for (const n of names) for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin']) if (existsSync(join(dir, n))) return join(dir, n)
  throw new Error(`none of ${names.join(', ')} found; install MariaDB server (apt-get install mariadb-server) to run multi-host tests`)
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

async function answers(port: number): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 500 })
    await c.end()
    return true
  } catch {
    return false
  }
}

/** Creates a data directory and starts a server on a free port. */
export async function startMariadbInstance(opts: { port?: number; bufferPoolMb?: number; /** More mariadbd options, e.g. `--default-time-zone=+05:30`. */ extraArgs?: readonly string[] } = {}): Promise<MariadbInstance> {
  const mariadbd = findBinary(['mariadbd', 'mysqld'])
  const installDb = findBinary(['mariadb-install-db', 'mysql_install_db'])
  const base = mkdtempSync(join(tmpdir(), 'shardkit-mariadb-'))
  const dataDir = join(base, 'data')
  await run(installDb, ['--no-defaults', `--datadir=${dataDir}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'])
  const port = opts.port ?? (await freePort())
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const inst: MariadbInstance = {
    port,
    url: `mysql://root@127.0.0.1:${port}`,
    dataDir,
    get running() {
      return child !== undefined
    },
    async start() {
      if (child) return
      const c = spawn(
        mariadbd,
        [
          '--no-defaults',
          `--datadir=${dataDir}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--socket=${join(base, 'sock')}`,
          `--pid-file=${join(base, 'pid')}`,
          '--user=root',
          `--innodb-buffer-pool-size=${opts.bufferPoolMb ?? 64}M`,
          '--innodb-log-file-size=32M',
          '--skip-log-bin',
          `--log-error=${join(base, 'error.log')}`,
          '--max-connections=300',
          ...(opts.extraArgs ?? []),
        ],
        { stdio: 'ignore' },
      )
      child = c
      exited = new Promise((resolve) => c.once('exit', () => resolve()))
      c.once('exit', () => {
        if (child === c) child = undefined
      })
      const deadline = Date.now() + 30_000
      while (!(await answers(port))) {
        if (!child) throw new Error(`mariadbd on port ${port} exited during start; see ${join(base, 'error.log')}`)
        if (Date.now() > deadline) throw new Error(`mariadbd on port ${port} did not answer within 30 s; see ${join(base, 'error.log')}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    async kill() {
      if (!child) return
      child.kill('SIGKILL')
      await exited
    },
    async stop() {
      if (!child) return
      child.kill('SIGTERM')
      await exited
    },
    pause() {
      child?.kill('SIGSTOP')
    },
    resume() {
      child?.kill('SIGCONT')
    },
    async destroy() {
      await inst.kill()
      rmSync(base, { recursive: true, force: true })
    },
  }
  await inst.start()
  return inst
}
