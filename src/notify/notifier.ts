/**
 * Notifications: the config's `notify` section names a URL that gets a JSON
 * POST, or a command (argv, no shell) that gets the same JSON on stdin. They
 * fire on a stage change or an aborted move, a guard refusal, a verify with
 * differences, and a backfill that finished, failed, or stayed throttled too
 * long.
 *
 * A hook is a convenience, never a gate: every attempt is bounded
 * (`timeoutMs`, then the request is aborted or the command killed), a failed
 * attempt is retried `retries` times with a growing pause, and a hook that
 * still fails is logged, never thrown: the operation it reports on has
 * already happened and must not fail because a pager was down. The URL is
 * logged with its query and password removed (tokens live there).
 */
import { spawn } from 'node:child_process'
import { hostname } from 'node:os'
import type { NotifyConfig } from '../config/schema.js'
import type { Logger } from '../runtime/logger.js'
import { silentLogger } from '../runtime/logger.js'

/** What a notification reports. */
export type NotifyKind = 'stage-changed' | 'move-aborted' | 'guard-refused' | 'verify-differences' | 'backfill-finished' | 'backfill-failed' | 'backfill-throttled'

/** The JSON a hook receives (`schemaVersion` 1). Identifiers and counts only, never row data. */
export interface NotifyEvent {
  readonly schemaVersion: 1
  readonly kind: NotifyKind
  readonly at: string
  /** One line an operator reads on a pager. */
  readonly summary: string
  readonly actor: string | null
  readonly host: string
  readonly pid: number
  readonly details: Readonly<Record<string, unknown>>
}

/** How one notification went (it never throws). */
export interface NotifyOutcome {
  readonly sent: boolean
  readonly attempts: number
  /** Why the last attempt failed, when it did. */
  readonly error?: string
  /** True when no hook is configured. */
  readonly skipped?: boolean
}

/** Sends notifications; `send` never throws and always ends within its bounds. */
export interface Notifier {
  readonly configured: boolean
  send(kind: NotifyKind, summary: string, details?: Readonly<Record<string, unknown>>, actor?: string | null): Promise<NotifyOutcome>
}

/** The URL as it may be logged: no password, no query (tokens), no fragment. */
export function loggableUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`
  } catch {
    return '(unparseable url)'
  }
}

async function postOnce(url: string, body: string, timeoutMs: number): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'shardkit-notify/1' }, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' })
  // Drain the body so the socket is freed; its content is not ours to log.
  await res.arrayBuffer().catch(() => undefined)
  if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`)
}

function runOnce(argv: readonly string[], body: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, SHARDKIT_NOTIFY: '1' } })
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the command did not finish within ${timeoutMs} ms (killed)`))
    }, timeoutMs)
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 300) stderr += c.toString('utf8')
    })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error((err as NodeJS.ErrnoException).code ?? err.message))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve()
      else reject(new Error(`exit ${code ?? signal}${stderr ? `: ${stderr.trim().slice(0, 200)}` : ''}`))
    })
    // A command that does not read its stdin must not fail the write (EPIPE).
    child.stdin.on('error', () => undefined)
    child.stdin.end(body)
  })
}

/**
 * Builds the notifier of a config's `notify` section (a no-op without one).
 * @example
 * const n = createNotifier(rt.config.notify, rt.logger)
 * await n.send('stage-changed', 'cutover advance: read-shards -> write-shards (v7)', { from, to })
 */
export function createNotifier(cfg: NotifyConfig | undefined, logger: Logger = silentLogger, opts: { backoffMs?: number } = {}): Notifier {
  const backoffMs = opts.backoffMs ?? 250
  return {
    configured: cfg !== undefined,
    async send(kind, summary, details = {}, actor = null) {
      if (!cfg) return { sent: false, attempts: 0, skipped: true }
      const event: NotifyEvent = { schemaVersion: 1, kind, at: new Date().toISOString(), summary, actor, host: hostname(), pid: process.pid, details }
      const body = JSON.stringify(event)
      const target = cfg.url !== undefined ? loggableUrl(cfg.url) : `command ${cfg.command![0]}`
      let error = ''
      for (let attempt = 1; attempt <= cfg.retries + 1; attempt++) {
        try {
          if (cfg.url !== undefined) await postOnce(cfg.url, body, cfg.timeoutMs)
          if (cfg.command !== undefined) await runOnce(cfg.command, body, cfg.timeoutMs)
          logger.debug({ kind, target, attempt }, 'notification sent')
          return { sent: true, attempts: attempt }
        } catch (err) {
          const e = err as Error
          error = e.name === 'TimeoutError' ? `no answer within ${cfg.timeoutMs} ms` : ((e.cause as { code?: string } | undefined)?.code ?? e.message)
          if (attempt <= cfg.retries) await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 1)))
        }
      }
      logger.warn({ kind, target, attempts: cfg.retries + 1, error }, `notification failed after ${cfg.retries + 1} attempt(s): ${error} (the operation itself is not affected)`)
      return { sent: false, attempts: cfg.retries + 1, error }
    },
  }
}
