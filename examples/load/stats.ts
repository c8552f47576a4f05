/**
 * Latency and outcome counters of a load run (pure). Latencies are kept in
 * a growable Float64Array (8 bytes each: a 5-minute run at 200 rps is ~0.5 MB).
 */

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

/** Collects latencies; `summary()` sorts a copy. */
export class LatencyRecorder {
  private data = new Float64Array(1024)
  private n = 0

  add(ms: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.n++] = ms
  }

  get count(): number {
    return this.n
  }

  summary(): LatencySummary {
    if (this.n === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 }
    const s = this.data.slice(0, this.n).sort()
    const at = (q: number) => round(s[Math.min(this.n - 1, Math.ceil(q * this.n) - 1)]!)
    let sum = 0
    for (let i = 0; i < this.n; i++) sum += s[i]!
    return { count: this.n, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(s[this.n - 1]!), mean: round(sum / this.n) }
  }
}

const round = (x: number) => Math.round(x * 100) / 100

/** The load operations. */
export const OPERATIONS = ['create', 'get', 'list-user', 'list-merchant', 'status'] as const
export type Operation = (typeof OPERATIONS)[number]

/** One failed request, kept as a sample for the report. */
export interface FailureSample {
  readonly op: Operation
  readonly status: number
  readonly error: string
}

/** Outcome of a load run. */
export interface LoadReport {
  readonly seconds: number
  readonly targetRps: number
  /** Requests answered (any status) or failed at the socket. */
  readonly requests: number
  /** Non-2xx answers plus socket errors. */
  readonly errors: number
  /** Ticks skipped because `maxInFlight` requests were already waiting (the service fell behind). */
  readonly skipped: number
  readonly created: number
  readonly byOp: Readonly<Record<Operation, { requests: number; errors: number; latency: LatencySummary }>>
  readonly latency: LatencySummary
  readonly failures: readonly FailureSample[]
}
