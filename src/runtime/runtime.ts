/**
 * The composition root: `openRuntime` owns every pool and client the toolkit
 * opens (one mysql2 pool per physical host, opened lazily, like ioredis
 * Cluster keeps one pool per node; plus legacy, control and Redis) and closes
 * them once. Library classes receive what they need from it and never close it.
 */
import { Redis } from 'ioredis'
import type { Pool } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { ShardkitConfig } from '../config/schema.js'
import { createMysqlPool } from './mysql.js'
import { setPoolDialect } from './dialect.js'
import { dialectSetting } from '../config/schema.js'
import { silentLogger, type Logger } from './logger.js'

export interface RuntimeOptions {
  readonly logger?: Logger
  /** Connections per host pool (default 10). */
  readonly connectionLimit?: number
}

export interface Runtime {
  readonly config: ShardkitConfig
  readonly logger: Logger
  /** The pool of a physical host from `config.hosts`, opened on first use. */
  host(name: string): Pool
  /** The legacy database's pool (default database = legacy.database). */
  legacy(): Pool
  /** The control database's pool (default database = control.database; it may not exist before `provision`). */
  control(): Pool
  /** A pool on the control server without a default database (for creating it). */
  controlServer(): Pool
  /** The shared Redis command connection, opened on first use. */
  redis(): Redis
  /** A new Redis connection for pub/sub; the runtime closes it with the rest. */
  redisSubscriber(): Redis
  /** Closes everything. Idempotent. */
  close(): Promise<void>
  readonly closed: boolean
}

class RuntimeImpl implements Runtime {
  readonly config: ShardkitConfig
  readonly logger: Logger
  private readonly pools = new Map<string, Pool>()
  private readonly redisClients: Redis[] = []
  private sharedRedis: Redis | undefined
  private closing: Promise<void> | undefined
  private readonly connectionLimit: number

  constructor(config: ShardkitConfig, opts: RuntimeOptions) {
    this.config = config
    this.logger = opts.logger ?? silentLogger
    this.connectionLimit = opts.connectionLimit ?? 10
  }

  get closed(): boolean {
    return this.closing !== undefined
  }

  private assertOpen(): void {
    if (this.closing) throw new ShardkitError('CLOSED', 'the runtime was closed; open a new one with openRuntime()')
  }

  private pool(key: string, url: string, database: string | null, dialectTarget: string): Pool {
    this.assertOpen()
    let p = this.pools.get(key)
    if (!p) {
      p = createMysqlPool(url, { database, connectionLimit: this.connectionLimit })
      setPoolDialect(p, dialectSetting(this.config, dialectTarget))
      this.pools.set(key, p)
    }
    return p
  }

  host(name: string): Pool {
    const url = this.config.hosts[name]
    if (url === undefined) throw new ShardkitError('CONFIG_INVALID', `host "${name}" is not in the config's hosts`, { host: name })
    // Shard tables are always qualified; a path in the host URL is not a default database.
    return this.pool(`host:${name}`, url, null, name)
  }

  legacy(): Pool {
    return this.pool('legacy', this.config.legacy.url, this.config.legacy.database, 'legacy')
  }

  control(): Pool {
    return this.pool('control', this.config.control.url, this.config.control.database, 'control')
  }

  controlServer(): Pool {
    // No default database: this pool creates it.
    return this.pool('control-server', this.config.control.url, null, 'control')
  }

  private newRedis(): Redis {
    this.assertOpen()
    const r = new Redis(this.config.redis.url, {
      lazyConnect: false,
      connectTimeout: 2_000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    })
    // Errors surface through commands; an unhandled 'error' event would crash the process.
    r.on('error', (err) => this.logger.debug({ err: err.message }, 'redis connection error'))
    this.redisClients.push(r)
    return r
  }

  redis(): Redis {
    this.sharedRedis ??= this.newRedis()
    return this.sharedRedis
  }

  redisSubscriber(): Redis {
    return this.newRedis()
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const pools = [...this.pools.values()]
      this.pools.clear()
      await Promise.allSettled(pools.map((p) => p.end()))
      // QUIT waits for an answer; a client stuck reconnecting (its server gone, or a proxy
      // that cut it) never gets one: give it a second, then drop the socket.
      await Promise.allSettled(this.redisClients.map((r) => (r.status === 'ready' ? boundedQuit(r) : Promise.resolve(r.disconnect()))))
    })()
    return this.closing
  }
}

/** QUIT, bounded: a server that does not answer in a second gets its socket dropped. */
async function boundedQuit(r: Redis): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([r.quit(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('quit timed out')), 1_000)))])
  } catch {
    r.disconnect()
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Opens a runtime over a validated config. Nothing connects until first use.
 * @example
 * const rt = openRuntime(loadConfig().config)
 * try { ... } finally { await rt.close() }
 */
export function openRuntime(config: ShardkitConfig, opts: RuntimeOptions = {}): Runtime {
  return new RuntimeImpl(config, opts)
}
