/**
 * The cutover run lock: one `cutover advance|rollback` at a time, in Redis
 * (SET NX PX, renewed while held, released by token, expires if its holder dies).
 */
import { hostname, userInfo } from 'node:os'
import { randomBytes } from 'node:crypto'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { cutoverKeys } from './switch-store.js'

/** Who runs cutover commands here (SHARDKIT_ACTOR, else user@host). */
export function defaultActor(env: Readonly<Record<string, string | undefined>> = {}): string {
  if (env.SHARDKIT_ACTOR) return env.SHARDKIT_ACTOR
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    // no passwd entry (containers): keep 'unknown'
  }
  return `${user}@${hostname()}`
}

/** A held run lock; `release()` is idempotent. */
export interface RunLock {
  readonly token: string
  release(): Promise<void>
}

const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`
const RENEW_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`

/**
 * Takes the cutover run lock (Redis, renewed while held, expires if the
 * holder dies).
 * @throws ShardkitError `ALREADY_RUNNING` naming the holder when another move runs
 */
export async function acquireRunLock(rt: Runtime, actor: string, ttlMs = 30_000): Promise<RunLock> {
  const redis = rt.redis()
  const key = cutoverKeys(rt.config.redis.keyPrefix).lock
  const token = randomBytes(8).toString('hex')
  const value = JSON.stringify({ token, actor, host: hostname(), pid: process.pid, since: new Date().toISOString() })
  const ok = await redis.set(key, value, 'PX', ttlMs, 'NX')
  if (ok !== 'OK') {
    const holder = parseHolder(await redis.get(key))
    throw new ShardkitError(
      'ALREADY_RUNNING',
      `another cutover move is running (${holder ? `${holder.actor} on ${holder.host} pid ${holder.pid} since ${holder.since}` : 'holder unknown'}); wait for it to finish, then check \`shardctl cutover status\``,
      holder ? { actor: holder.actor, host: holder.host, pid: holder.pid } : {},
    )
  }
  const timer = setInterval(() => {
    redis.eval(RENEW_LUA, 1, key, value, String(ttlMs)).catch((err) => rt.logger.warn({ err: (err as Error).message }, 'cutover: run lock renewal failed'))
  }, Math.max(100, Math.floor(ttlMs / 3)))
  timer.unref()
  let released = false
  return {
    token,
    async release() {
      if (released) return
      released = true
      clearInterval(timer)
      await redis.eval(RELEASE_LUA, 1, key, value)
    },
  }
}

function parseHolder(text: string | null): { actor: string; host: string; pid: number; since: string } | undefined {
  try {
    return text ? (JSON.parse(text) as { actor: string; host: string; pid: number; since: string }) : undefined
  } catch {
    return undefined
  }
}

/** Who holds the run lock, if anyone. */
export async function readRunLock(rt: Runtime): Promise<{ actor: string; host: string; pid: number; since: string } | undefined> {
  return parseHolder(await rt.redis().get(cutoverKeys(rt.config.redis.keyPrefix).lock))
}

