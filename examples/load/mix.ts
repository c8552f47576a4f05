/**
 * What the load generator does next (pure: randomness injected). It keeps a
 * bounded pool of orders it created, with the status and version it last
 * saw; an order is taken out of the pool while a status change is in
 * flight, so two requests never race on one order and a 409 is a real error.
 */
import { happyNext, type OrderStatus } from '../order-service/lifecycle.js'
import type { Operation } from './stats.js'

/** An order the generator knows. */
export interface KnownOrder {
  readonly id: string
  readonly userId: string
  readonly merchantId: string
  status: OrderStatus
  version: number
}

/** Shares of each operation (they need not sum to 1). */
export type Mix = Readonly<Record<Operation, number>>

/** Default mix: 40% creates, reads by id, by user and by merchant, and status moves. */
export const DEFAULT_MIX: Mix = { create: 0.4, get: 0.2, 'list-user': 0.1, 'list-merchant': 0.1, status: 0.2 }

/** Picks an operation; falls back to create when there is nothing to read or move. */
export function pickOperation(mix: Mix, random: () => number, known: number): Operation {
  const entries = Object.entries(mix) as [Operation, number][]
  const total = entries.reduce((s, [, w]) => s + w, 0)
  let r = random() * total
  for (const [op, w] of entries) {
    r -= w
    if (r < 0) return known === 0 && op !== 'create' && op !== 'list-user' && op !== 'list-merchant' ? 'create' : op
  }
  return 'create'
}

/** A bounded pool of known orders (oldest evicted first). */
export class OrderPool {
  private readonly orders: KnownOrder[] = []
  constructor(private readonly capacity = 5_000) {}

  get size(): number {
    return this.orders.length
  }

  add(o: KnownOrder): void {
    this.orders.push(o)
    if (this.orders.length > this.capacity) this.orders.shift()
  }

  /** A random known order, left in the pool. */
  sample(random: () => number): KnownOrder | undefined {
    return this.orders[Math.floor(random() * this.orders.length)]
  }

  /** A random order that can still move, taken out of the pool (put it back with `add`). */
  takeMovable(random: () => number): KnownOrder | undefined {
    for (let tries = 0; tries < 8 && this.orders.length > 0; tries++) {
      const i = Math.floor(random() * this.orders.length)
      const o = this.orders[i]!
      if (happyNext(o.status) !== undefined) {
        this.orders.splice(i, 1)
        return o
      }
    }
    return undefined
  }
}

/** The status to move an order to: mostly forward, one in ten cancelled where allowed. */
export function nextStatusFor(o: KnownOrder, random: () => number): OrderStatus | undefined {
  return happyNext(o.status, random() < 0.1)
}

/** A decimal id in 1..n. */
export function pickKey(random: () => number, n: number): string {
  return String(1 + Math.floor(random() * n))
}
