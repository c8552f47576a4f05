/**
 * An in-memory LeaseStore with the MySQL store's contract, for pure unit tests
 * of the generator: store time comes from an injected function, and renewals
 * can be made to fail (a partition) without a server. The MySQL store itself
 * is tested against the real server in test/integration/idgen-lease.test.ts.
 */
import { ShardkitError } from '../../src/errors.js'
import type { LeaseGrant, LeaseRequest, LeaseStore } from '../../src/idgen/lease.js'

interface Row {
  owner: string
  token: string
  version: number
  expiresAt: number
  reservedUntilMs: number
}

export class MemoryLeaseStore implements LeaseStore {
  readonly rows: Row[]
  /** While true, renew() rejects as an unreachable database would. */
  failRenewals = false
  renewCalls = 0
  private tokens = 0

  constructor(
    private readonly storeNow: () => number,
    workers = 256,
  ) {
    this.rows = Array.from({ length: workers }, () => ({ owner: '', token: '', version: 0, expiresAt: -Infinity, reservedUntilMs: 0 }))
  }

  async acquire(req: LeaseRequest): Promise<LeaseGrant> {
    const now = this.storeNow()
    const candidates = this.rows
      .map((r, worker) => ({ r, worker }))
      .filter(({ r, worker }) => r.expiresAt <= now && (req.worker === undefined || worker === req.worker))
      .sort((a, b) => a.r.reservedUntilMs - b.r.reservedUntilMs || a.worker - b.worker)
    const pick = candidates[0]
    if (!pick) throw new ShardkitError('ID_WORKERS_EXHAUSTED', 'all workers are leased', { workers: this.rows.length }, { retryable: true })
    const { r, worker } = pick
    const highWaterMs = r.reservedUntilMs
    r.owner = req.owner
    r.token = `t${++this.tokens}`
    r.version++
    r.expiresAt = now + req.ttlMs
    r.reservedUntilMs = Math.max(r.reservedUntilMs, req.reserveUntilMs)
    return { worker, token: r.token, highWaterMs, reservedUntilMs: r.reservedUntilMs }
  }

  async renew(worker: number, token: string, ttlMs: number, reserveUntilMs: number): Promise<void> {
    this.renewCalls++
    if (this.failRenewals) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    const r = this.rows[worker]
    if (!r || r.token !== token) throw new ShardkitError('ID_LEASE_LOST', `worker ${worker} lost`, { worker })
    r.expiresAt = this.storeNow() + ttlMs
    r.reservedUntilMs = Math.max(r.reservedUntilMs, reserveUntilMs)
  }

  async release(worker: number, token: string, highWaterMs: number): Promise<void> {
    const r = this.rows[worker]
    if (!r || r.token !== token) return
    r.owner = ''
    r.token = ''
    r.version++
    r.expiresAt = -Infinity
    r.reservedUntilMs = Math.min(r.reservedUntilMs, highWaterMs)
  }
}
