/**
 * The status server (`shardctl serve`): a read-only HTTP face of the status
 * document.
 *
 *   GET /             the status page (HTML, its CSS and JS bundled: nothing
 *                     is loaded from outside this machine)
 *   GET /api/status   the status document (the same JSON as `status --json`)
 *   GET /events       server-sent events: `status` every interval, `stage` at once on a change
 *   GET /metrics      Prometheus text format (prom-client)
 *   GET /healthz      liveness, with the age of the last good document
 *
 * It binds loopback unless told otherwise, and a non-loopback address needs
 * a token (`Authorization: Bearer <token>` or `?token=`; the page passes its
 * own on). Every change stays in the CLI, which owns confirmation and audit:
 * any method but GET/HEAD is refused with 405.
 */
import { timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { Registry } from 'prom-client'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { registerStatusMetrics } from '../metrics/status-metrics.js'
import { StatusPoller, type PollSnapshot } from './poller.js'
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js'

/** Options of {@link startStatusServer}. */
export interface StatusServerOptions {
  /** `host:port` (default 127.0.0.1:9400; port 0 picks a free one). */
  readonly listen?: string
  /** Required for a non-loopback address. */
  readonly token?: string
  /** How often the status is rebuilt and sent (default 2000 ms). */
  readonly intervalMs?: number
}

/** A running status server. */
export interface StatusServer {
  /** `http://host:port` it listens on. */
  readonly url: string
  readonly poller: StatusPoller
  readonly app: FastifyInstance
  close(): Promise<void>
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/**
 * Parses `--listen`: `host:port`, `[v6]:port` or `:port` (loopback).
 * @throws ShardkitError `USAGE` naming --listen
 */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]*)):(\d{1,5})$/.exec(value.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new ShardkitError('USAGE', `--listen must be host:port such as 127.0.0.1:9400, [::1]:9400 or :9400 (got "${value}")`, { argument: '--listen' })
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port }
}

const PUBLIC_PATHS = new Set(['/', '/app.js', '/app.css', '/healthz'])

function tokenMatches(given: string | undefined, want: string): boolean {
  if (given === undefined) return false
  const a = Buffer.from(given)
  const b = Buffer.from(want)
  return a.length === b.length && timingSafeEqual(a, b)
}

function sseFrame(event: string, s: PollSnapshot): string {
  return `event: ${event}\ndata: ${JSON.stringify(s)}\n\n`
}

/**
 * Starts the status server on its own runtime's sources.
 * @throws ShardkitError `USAGE` for a bad --listen, or a non-loopback address without a token
 * @example const { url, close } = await startStatusServer(rt, { listen: '127.0.0.1:9400' }) // url: http://127.0.0.1:9400
 */
export async function startStatusServer(rt: Runtime, opts: StatusServerOptions = {}): Promise<StatusServer> {
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:9400')
  if (!isLoopback(host) && !opts.token) {
    throw new ShardkitError('USAGE', `--listen ${host} is not a loopback address: anyone who reaches it would see the fleet; pass --token <secret> (or set SHARDKIT_SERVE_TOKEN), or listen on 127.0.0.1`, { argument: '--token' })
  }
  if (opts.token !== undefined && opts.token.length < 16) throw new ShardkitError('USAGE', '--token must be at least 16 characters (use a random secret, e.g. `openssl rand -hex 16`)', { argument: '--token' })
  const intervalMs = opts.intervalMs ?? 2_000
  const poller = new StatusPoller(rt, intervalMs)
  const registry = new Registry()
  registerStatusMetrics(registry, () => poller.snapshot().doc)
  const app = Fastify({ logger: false })
  const clients = new Set<FastifyReply>()

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('cache-control', 'no-store')
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply.code(405).header('allow', 'GET, HEAD').send({ error: 'READ_ONLY', message: 'the status server is read-only: make changes with shardctl, which confirms and audits them' })
    // The page shell and its assets hold no data; the data routes need the token.
    if (!opts.token || PUBLIC_PATHS.has(req.url.split('?')[0]!)) return
    const auth = req.headers.authorization
    const q = new URL(req.url, 'http://x').searchParams.get('token') ?? undefined
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : q
    if (!tokenMatches(given, opts.token)) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'UNAUTHORIZED', message: 'pass the token: Authorization: Bearer <token>, or ?token=<token>' })
  })
  const page = (type: string, body: string) => async (_req: FastifyRequest, reply: FastifyReply) => reply.type(type).send(body)
  app.get('/', async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      // Everything comes from here; nothing from outside the machine.
      .header('content-security-policy', "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
      .send(PAGE_HTML),
  )
  app.get('/app.js', page('text/javascript; charset=utf-8', PAGE_JS))
  app.get('/app.css', page('text/css; charset=utf-8', PAGE_CSS))
  app.get('/api/status', async (_req, reply) => {
    const s = poller.snapshot()
    if (!s.doc) return reply.code(503).send({ error: 'NOT_READY', message: s.error ?? 'the first status is being built' })
    return reply.header('x-shardkit-status-age-ms', String(s.ageMs)).header('x-shardkit-stale', String(s.stale)).send(s.doc)
  })
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  app.get('/healthz', async () => {
    const s = poller.snapshot()
    return { ok: true, statusAgeMs: s.ageMs, stale: s.stale, error: s.error }
  })
  app.get('/events', (req, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.write(`retry: ${Math.min(intervalMs, 2_000)}\n\n`)
    res.write(sseFrame('status', poller.snapshot()))
    clients.add(reply)
    req.raw.on('close', () => clients.delete(reply))
  })
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` }))

  const send = (event: string) => (s: PollSnapshot) => {
    const frame = sseFrame(event, s)
    for (const c of clients) c.raw.write(frame)
  }
  poller.on('status', send('status'))
  poller.on('stage', send('stage'))
  poller.on('error-status', send('status'))
  await poller.start()
  let address: string
  try {
    address = await app.listen({ host, port })
  } catch (err) {
    await poller.close()
    throw new ShardkitError('USAGE', `cannot listen on ${host}:${port} (${(err as { code?: string }).code ?? (err as Error).message}); pick another --listen`, { argument: '--listen' }, { cause: err })
  }
  return {
    url: address,
    poller,
    app,
    async close() {
      for (const c of clients) c.raw.end()
      clients.clear()
      await poller.close()
      await app.close()
    },
  }
}
