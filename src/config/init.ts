/**
 * Builds a valid config that spreads 120 + 120 logical shards evenly over
 * the given hosts and databases: what `shardctl config init` writes, and
 * what the test suites and the demo start from. Pure: no I/O.
 */
import { LOGICAL_SHARDS, DIMENSIONS } from '../router/shard-function.js'
import type { RawConfig } from './schema.js'

export interface BuildConfigOptions {
  /** mysql:// URL of the legacy server. */
  readonly legacyUrl: string
  readonly legacyDatabase: string
  readonly legacyTable: string
  readonly primaryKey?: string
  readonly userColumn?: string
  readonly merchantColumn?: string
  /** Largest legacy order id (decimal string); new ids are all above it. */
  readonly idCeiling: string
  /** mysql:// URLs of the shard hosts, in order; named h1, h2, ... */
  readonly shardHosts: readonly string[]
  /** Databases per host per dimension (default 2). */
  readonly databasesPerHost?: number
  /** Prefix of every database shardkit creates (default `sk_`). */
  readonly prefix?: string
  /**
   * Control database server (default: the first shard host). A path names the
   * control database (`mysql://host:3306/ctl_db`); without one it is `<prefix>control`.
   */
  readonly controlUrl?: string
  readonly redisUrl?: string
  readonly redisKeyPrefix?: string
}

/**
 * The control server and database: the database a given control URL names in
 * its path (the path then leaves the URL: every pool connects without a
 * default database, since `provision` creates it), else `fallback`.
 */
export function controlOf(url: string, given: boolean, fallback: string): { url: string; database: string } {
  if (!given) return { url, database: fallback }
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return { url, database: fallback } // parseConfig reports the URL
  }
  const path = decodeURIComponent(u.pathname.replace(/^\//, ''))
  if (path === '') return { url, database: fallback }
  u.pathname = ''
  return { url: u.toString().replace(/\/$/, ''), database: path }
}

/** Splits 0..119 into `parts` contiguous ranges whose sizes differ by at most one. */
export function splitShards(parts: number): Array<[number, number]> {
  const out: Array<[number, number]> = []
  let start = 0
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(LOGICAL_SHARDS / parts) + (i < LOGICAL_SHARDS % parts ? 1 : 0)
    out.push([start, start + size - 1])
    start += size
  }
  return out
}

/** A raw config (as written to shardkit.json) with shards spread evenly. */
export function buildConfig(o: BuildConfigOptions): RawConfig {
  const prefix = o.prefix ?? 'sk_'
  const perHost = o.databasesPerHost ?? 2
  const hosts: Record<string, string> = {}
  o.shardHosts.forEach((url, i) => (hosts[`h${i + 1}`] = url))
  const hostNames = Object.keys(hosts)
  const dims = {} as Record<(typeof DIMENSIONS)[number], { shardFunction: 'mod'; placement: { shards: string; host: string; database: string; table: string }[] }>
  for (const dim of DIMENSIONS) {
    const ranges = splitShards(Math.min(LOGICAL_SHARDS, Math.max(1, hostNames.length * perHost)))
    dims[dim] = {
      shardFunction: 'mod',
      placement: ranges.map(([lo, hi], i) => ({
        shards: lo === hi ? String(lo) : `${lo}-${hi}`,
        // Round-robin databases over hosts so each host gets an even share.
        host: hostNames[i % hostNames.length]!,
        database: `${prefix}${dim}_${i}`,
        table: `${o.legacyTable}_{shard}`,
      })),
    }
  }
  return {
    legacy: {
      url: o.legacyUrl,
      database: o.legacyDatabase,
      table: o.legacyTable,
      primaryKey: o.primaryKey ?? 'order_id',
      userColumn: o.userColumn ?? 'user_id',
      merchantColumn: o.merchantColumn ?? 'merchant_id',
      idCeiling: o.idCeiling,
    },
    control: controlOf(o.controlUrl ?? o.shardHosts[0] ?? o.legacyUrl, o.controlUrl !== undefined, `${prefix}control`),
    redis: { url: o.redisUrl ?? 'redis://127.0.0.1:6379', keyPrefix: o.redisKeyPrefix ?? `${prefix}:`.replace(/_:$/, ':') },
    hosts,
    dimensions: dims,
  }
}
