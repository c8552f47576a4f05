/**
 * A private redis-server for tests (and the soak) that must lose Redis's data
 * for real: FLUSHDB or a SIGKILL and restart, on a port of its own, so the
 * shared Redis other tests use is never flushed. Keeps nothing on disk
 * (no RDB, no AOF), like the machine's own Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { Redis } from 'ioredis'
import { freePort } from './mariadb-instance.js'

export interface RedisInstance {
  readonly port: number
  readonly url: string
  /** SIGKILL and start again on the same port: every key is gone. Resolves when it answers. */
  restart(): Promise<void>
  /** FLUSHALL on this instance only. */
  flush(): Promise<void>
  /** Stops the server. Idempotent. */
  destroy(): Promise<void>
}

function binary(): string {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server']) if (existsSync(p)) return p
  throw new Error('redis-server not found; install it (apt-get install redis-server) to run the Redis-loss tests')
}

async function waitAnswers(port: number, child: ChildProcess): Promise<void> {
  const end = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`)
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 })
    r.on('error', () => undefined)
    try {
      await r.connect()
      await r.ping()
      return
    } catch {
      if (Date.now() > end) throw new Error(`redis-server on port ${port} did not answer within 15 s`)
      await new Promise((res) => setTimeout(res, 50))
    } finally {
      r.disconnect()
    }
  }
}

/** Starts a redis-server on a free port; resolves once it answers. */
export async function startRedisInstance(): Promise<RedisInstance> {
  const bin = binary()
  const port = await freePort()
  let child: ChildProcess | undefined
  const launch = async () => {
    child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' })
    await waitAnswers(port, child)
  }
  const kill = async () => {
    const c = child
    child = undefined
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve())
      c.kill('SIGKILL')
    })
  }
  await launch()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await kill()
      await launch()
    },
    async flush() {
      const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
      try {
        await r.flushall()
      } finally {
        r.disconnect()
      }
    },
    destroy: kill,
  }
}
