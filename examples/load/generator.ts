/**
 * An open-loop load generator for the order service: requests start at a
 * steady rate whatever the latency (so a slow service shows up as latency and
 * skipped ticks, not as a quietly lower rate), spread round-robin over one or
 * more service URLs, with at most `maxInFlight` waiting at once.
 *
 * Why not autocannon: it replays fixed requests per connection; here every
 * read and status change depends on an id an earlier create returned, and
 * every id the service acknowledged must be recorded for the exactly-once
 * check. A small loop over keep-alive `node:http` does both.
 */
import { Agent, request } from 'node:http'
import { LatencyRecorder, OPERATIONS, type FailureSample, type LoadReport, type Operation } from './stats.js'
import { DEFAULT_MIX, nextStatusFor, OrderPool, pickKey, pickOperation, type Mix } from './mix.js'
import type { OrderStatus } from '../order-service/lifecycle.js'

export interface LoadOptions {
  /** Service base URLs (`http://127.0.0.1:8080`), used round-robin. */
  readonly urls: readonly string[]
  readonly rps: number
  /** Seconds to run; 0 = until `signal` aborts. */
  readonly durationS: number
  readonly signal?: AbortSignal
  /** Called once for every order id the service answered 201 for. */
  readonly onCreated?: (orderId: string) => void
  readonly maxInFlight?: number
  /** Users are 1..users, merchants 1..merchants (match the seeded data to read real lists). */
  readonly users?: number
  readonly merchants?: number
  readonly mix?: Mix
  readonly random?: () => number
  /** Per-request timeout (default 30 s). */
  readonly timeoutMs?: number
}

interface Answer {
  readonly status: number
  readonly body: string
}

function send(agent: Agent, base: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request(new URL(path, base), { method, agent, timeout: timeoutMs, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(data)
  })
}

/** Runs load until the duration passes or `signal` aborts; waits for requests in flight, then reports. */
export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  if (o.urls.length === 0) throw new Error('runLoad: give at least one url')
  if (!Number.isFinite(o.rps) || o.rps <= 0) throw new Error(`runLoad: rps must be a number above 0 (got ${o.rps})`)
  const random = o.random ?? Math.random
  const mix = o.mix ?? DEFAULT_MIX
  const users = o.users ?? 50_000
  const merchants = o.merchants ?? 2_000
  const maxInFlight = o.maxInFlight ?? 256
  const timeoutMs = o.timeoutMs ?? 30_000
  const agent = new Agent({ keepAlive: true, maxSockets: Math.max(8, Math.ceil(maxInFlight / o.urls.length)) })
  const pool = new OrderPool()
  const all = new LatencyRecorder()
  const per = Object.fromEntries(OPERATIONS.map((op) => [op, { requests: 0, errors: 0, rec: new LatencyRecorder() }])) as Record<Operation, { requests: number; errors: number; rec: LatencyRecorder }>
  const failures: FailureSample[] = []
  let requests = 0
  let errors = 0
  let skipped = 0
  let created = 0
  let inFlight = 0
  let rr = 0
  const pending = new Set<Promise<void>>()

  const fail = (op: Operation, status: number, error: string) => {
    errors++
    per[op].errors++
    if (failures.length < 20) failures.push({ op, status, error: error.slice(0, 300) })
  }

  async function one(op: Operation): Promise<void> {
    const base = o.urls[rr++ % o.urls.length]!
    let method = 'GET'
    let path: string
    let body: unknown
    let moving: ReturnType<OrderPool['takeMovable']>
    let target: OrderStatus | undefined
    if (op === 'create') {
      const qty = 1 + Math.floor(random() * 3)
      const price = 100 + Math.floor(random() * 9_900)
      method = 'POST'
      path = '/orders'
      body = { user_id: pickKey(random, users), merchant_id: pickKey(random, merchants), total_cents: qty * price, items: [{ sku: `SKU-${Math.floor(random() * 1000)}`, name: '宫保鸡丁', qty, price_cents: price }], address: '上海市 徐汇区 漕溪北路 1号', phone: '13800000000', note: random() < 0.3 ? 'less spicy 🌶️' : null }
    } else if (op === 'get') {
      path = `/orders/${pool.sample(random)!.id}`
    } else if (op === 'list-user') {
      path = `/users/${pool.size > 0 && random() < 0.5 ? pool.sample(random)!.userId : pickKey(random, users)}/orders?limit=20`
    } else if (op === 'list-merchant') {
      path = `/merchants/${pool.size > 0 && random() < 0.5 ? pool.sample(random)!.merchantId : pickKey(random, merchants)}/orders?limit=20`
    } else {
      moving = pool.takeMovable(random)
      target = moving && nextStatusFor(moving, random)
      if (!moving || !target) return one('get')
      method = 'POST'
      path = `/orders/${moving.id}/status`
      body = { status: target, version: moving.version }
    }
    const t0 = performance.now()
    try {
      const a = await send(agent, base, method, path, body, timeoutMs)
      const ms = performance.now() - t0
      requests++
      per[op].requests++
      all.add(ms)
      per[op].rec.add(ms)
      if (a.status < 200 || a.status > 299) {
        fail(op, a.status, a.body)
        return
      }
      if (op === 'create') {
        const j = JSON.parse(a.body) as { order_id: string; user_id: string; merchant_id: string }
        created++
        o.onCreated?.(j.order_id)
        pool.add({ id: j.order_id, userId: j.user_id, merchantId: j.merchant_id, status: 'created', version: 1 })
      } else if (moving && target) {
        const j = JSON.parse(a.body) as { version: number }
        moving.status = target
        moving.version = j.version
      }
    } catch (err) {
      requests++
      per[op].requests++
      fail(op, 0, (err as Error).message)
    } finally {
      // Put a moved (or failed-to-move) order back; a failed one keeps the state we last saw.
      if (moving) pool.add(moving)
    }
  }

  const started = performance.now()
  const endAt = o.durationS > 0 ? started + o.durationS * 1000 : Infinity
  let due = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      if (now >= endAt || o.signal?.aborted) {
        clearInterval(timer)
        resolve()
        return
      }
      const target = Math.floor(((now - started) / 1000) * o.rps)
      while (due < target) {
        due++
        if (inFlight >= maxInFlight) {
          skipped++
          continue
        }
        inFlight++
        const p = one(pickOperation(mix, random, pool.size)).finally(() => {
          inFlight--
          pending.delete(p)
        })
        pending.add(p)
      }
    }
    const timer = setInterval(tick, 5)
    o.signal?.addEventListener('abort', tick, { once: true })
  })
  while (pending.size > 0) await Promise.all([...pending])
  agent.destroy()
  const seconds = (performance.now() - started) / 1000
  return {
    seconds: Math.round(seconds * 10) / 10,
    targetRps: o.rps,
    requests,
    errors,
    skipped,
    created,
    byOp: Object.fromEntries(OPERATIONS.map((op) => [op, { requests: per[op].requests, errors: per[op].errors, latency: per[op].rec.summary() }])) as LoadReport['byOp'],
    latency: all.summary(),
    failures,
  }
}

/** The report as a few lines of text. */
export function formatLoadReport(r: LoadReport): string {
  const l = r.latency
  const lines = [
    `load: ${r.requests} requests in ${r.seconds}s (target ${r.targetRps}/s), ${r.errors} errors, ${r.skipped} skipped, ${r.created} orders created`,
    `latency ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}`,
  ]
  for (const op of OPERATIONS) {
    const b = r.byOp[op]
    if (b.requests > 0) lines.push(`  ${op.padEnd(13)} ${String(b.requests).padStart(7)} req ${String(b.errors).padStart(5)} err  p50 ${b.latency.p50}  p99 ${b.latency.p99}`)
  }
  for (const f of r.failures.slice(0, 5)) lines.push(`  failed ${f.op}: ${f.status} ${f.error}`)
  return lines.join('\n')
}
