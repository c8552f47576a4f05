/**
 * Live instances: each StageWatcher heartbeats the stage version it has
 * applied into a Redis hash, with an expiry kept in a sorted set scored on
 * the Redis clock (so instances on machines with skewed clocks agree). An
 * instance whose heartbeat expired is not live: switches stop waiting for it,
 * and the write fence refuses it if it still writes.
 */
import { hostname } from 'node:os'
import type { Redis } from 'ioredis'
import type { Stage, StageState } from './stages.js'
import { cutoverKeys } from './switch-store.js'
import { isStage } from './transitions.js'

/** A live instance and the stage version it has applied. */
export interface InstanceAck {
  readonly instanceId: string
  readonly version: number
  readonly stage: Stage | null
  readonly host: string | null
  readonly pid: number | null
  /** Milliseconds until the heartbeat expires (Redis clock). */
  readonly expiresInMs: number
  /** The heartbeat's time to live as written (status derives the heartbeat's age from it); null from older writers. */
  readonly heartbeatTtlMs?: number | null
}

// Expiry is computed on the Redis clock so instances on other machines agree.
const HEARTBEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - 10 * ttl)
for _, id in ipairs(dead) do redis.call('HDEL', KEYS[1], id); redis.call('ZREM', KEYS[2], id) end
redis.call('PEXPIRE', KEYS[1], 20 * ttl + 60000)
redis.call('PEXPIRE', KEYS[2], 20 * ttl + 60000)
return now`

/** Records that `instanceId` has applied `state` (heartbeat; expires after `ttlMs`). */
export async function writeHeartbeat(redis: Redis, prefix: string, instanceId: string, state: Pick<StageState, 'version' | 'stage'>, ttlMs: number): Promise<void> {
  const k = cutoverKeys(prefix)
  const info = JSON.stringify({ version: state.version, stage: state.stage, host: hostname(), pid: process.pid, ttlMs })
  await redis.eval(HEARTBEAT_LUA, 2, k.instances, k.expiry, instanceId, info, String(ttlMs))
}

/** Removes an instance's heartbeat (a clean shutdown). */
export async function removeHeartbeat(redis: Redis, prefix: string, instanceId: string): Promise<void> {
  const k = cutoverKeys(prefix)
  await redis.multi().hdel(k.instances, instanceId).zrem(k.expiry, instanceId).exec()
}

/** Every instance whose heartbeat has not expired, by id. */
export async function readLiveInstances(redis: Redis, prefix: string): Promise<InstanceAck[]> {
  const k = cutoverKeys(prefix)
  const [sec, micro] = await redis.time()
  const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000)
  const live = await redis.zrangebyscore(k.expiry, now, '+inf', 'WITHSCORES')
  if (live.length === 0) return []
  const ids: string[] = []
  const expiry = new Map<string, number>()
  for (let i = 0; i < live.length; i += 2) {
    ids.push(live[i]!)
    expiry.set(live[i]!, Number(live[i + 1]))
  }
  const infos = await redis.hmget(k.instances, ...ids)
  return ids
    .map((id, i) => {
      let v: Record<string, unknown> = {}
      try {
        v = JSON.parse(infos[i] ?? '{}') as Record<string, unknown>
      } catch {
        // a malformed entry counts as version -1: it never acknowledges
      }
      return {
        instanceId: id,
        version: Number.isSafeInteger(v.version) ? (v.version as number) : -1,
        stage: isStage(v.stage) ? v.stage : null,
        host: typeof v.host === 'string' ? v.host : null,
        pid: typeof v.pid === 'number' ? v.pid : null,
        expiresInMs: expiry.get(id)! - now,
        heartbeatTtlMs: typeof v.ttlMs === 'number' ? v.ttlMs : null,
      }
    })
    .sort((a, b) => a.instanceId.localeCompare(b.instanceId))
}

