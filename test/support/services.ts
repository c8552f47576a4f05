/**
 * Finds the MySQL/MariaDB and Redis the tests talk to, in this order:
 * SHARDKIT_TEST_MYSQL_URL / SHARDKIT_TEST_REDIS_URL; else the local defaults
 * when they answer; else testcontainers (MySQL 8, Redis 7) when a Docker engine
 * answers; else an error that says what to start. Never skips silently.
 */
import { existsSync } from 'node:fs'
import net from 'node:net'
import mysql from 'mysql2/promise'
import { Redis } from 'ioredis'

export const LOCAL_MYSQL_URL = 'mysql://root@127.0.0.1:3306'
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379'

export interface ResolvedServices {
  mysqlUrl: string
  redisUrl: string
  /** Where each came from, for the run's first line. */
  sources: { mysql: string; redis: string }
  stop(): Promise<void>
}

async function mysqlAnswers(url: string): Promise<string | undefined> {
  let conn: mysql.Connection | undefined
  try {
    const u = new URL(url)
    conn = await mysql.createConnection({
      host: u.hostname,
      port: Number(u.port || 3306),
      user: decodeURIComponent(u.username || 'root'),
      password: decodeURIComponent(u.password),
      connectTimeout: 2_000,
    })
    await conn.query('SELECT 1')
    return undefined
  } catch (err) {
    return (err as Error).message
  } finally {
    await conn?.end().catch(() => undefined)
  }
}

async function redisAnswers(url: string): Promise<string | undefined> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on('error', () => undefined)
  try {
    await r.connect()
    await r.ping()
    return undefined
  } catch (err) {
    return (err as Error).message
  } finally {
    r.disconnect()
  }
}

function dockerAvailable(): Promise<boolean> {
  const sock = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice(7) : '/var/run/docker.sock'
  if (process.env.DOCKER_HOST?.startsWith('tcp://')) return Promise.resolve(true)
  if (!existsSync(sock)) return Promise.resolve(false)
  return new Promise((resolve) => {
    const s = net.connect(sock, () => {
      s.end()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

const HOW_TO_START =
  'start MariaDB (`start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`) and Redis ' +
  '(`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`), ' +
  'or set SHARDKIT_TEST_MYSQL_URL / SHARDKIT_TEST_REDIS_URL, or run a Docker engine for testcontainers'

/** Resolves both services or throws an error naming what to start. */
export async function resolveServices(env = process.env): Promise<ResolvedServices> {
  const stops: Array<() => Promise<unknown>> = []
  const resolveOne = async (
    kind: 'mysql' | 'redis',
    envVar: string,
    local: string,
    answers: (url: string) => Promise<string | undefined>,
    container: () => Promise<{ url: string; stop: () => Promise<unknown> }>,
  ): Promise<{ url: string; source: string }> => {
    const fromEnv = env[envVar]
    if (fromEnv) {
      const why = await answers(fromEnv)
      if (why) throw new Error(`${envVar} is set but ${kind} does not answer there (${why}); fix the URL or unset it`)
      return { url: fromEnv, source: envVar }
    }
    const whyLocal = await answers(local)
    if (!whyLocal) return { url: local, source: 'local default' }
    if (await dockerAvailable()) {
      const c = await container()
      stops.push(c.stop)
      return { url: c.url, source: 'testcontainers' }
    }
    throw new Error(`no ${kind} for the tests: ${local} did not answer (${whyLocal}) and no Docker engine answers; ${HOW_TO_START}`)
  }

  const my = await resolveOne('mysql', 'SHARDKIT_TEST_MYSQL_URL', LOCAL_MYSQL_URL, mysqlAnswers, async () => {
    const { MySqlContainer } = await import('@testcontainers/mysql')
    const c = await new MySqlContainer('mysql:8.0').withRootPassword('shardkit').start()
    return { url: `mysql://root:shardkit@${c.getHost()}:${c.getPort()}`, stop: () => c.stop() }
  })
  const rd = await resolveOne('redis', 'SHARDKIT_TEST_REDIS_URL', LOCAL_REDIS_URL, redisAnswers, async () => {
    const { RedisContainer } = await import('@testcontainers/redis')
    const c = await new RedisContainer('redis:7').start()
    return { url: c.getConnectionUrl(), stop: () => c.stop() }
  })
  return {
    mysqlUrl: my.url,
    redisUrl: rd.url,
    sources: { mysql: my.source, redis: rd.source },
    stop: async () => {
      await Promise.allSettled(stops.map((s) => s()))
    },
  }
}
