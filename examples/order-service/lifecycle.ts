/**
 * The order lifecycle (pure): created -> paid -> accepted -> delivering ->
 * completed, and cancel from created, paid or accepted. The service asks
 * `checkTransition` before every status write and answers 409 when it
 * refuses, so an illegal change never reaches the store.
 */

/** Every status an order can have, in lifecycle order. */
export const ORDER_STATUSES = ['created', 'paid', 'accepted', 'delivering', 'completed', 'cancelled'] as const
export type OrderStatus = (typeof ORDER_STATUSES)[number]

/** Statuses a client may ask for (an order is only ever created by POST). */
export const TARGET_STATUSES = ['paid', 'accepted', 'delivering', 'completed', 'cancelled'] as const

const NEXT: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  created: ['paid', 'cancelled'],
  paid: ['accepted', 'cancelled'],
  accepted: ['delivering', 'cancelled'],
  delivering: ['completed'],
  completed: [],
  cancelled: [],
}

/** Whether `s` is one of the lifecycle statuses. */
export function isOrderStatus(s: unknown): s is OrderStatus {
  return typeof s === 'string' && (ORDER_STATUSES as readonly string[]).includes(s)
}

/** The statuses an order may move to from `from` (empty when final). */
export function nextStatuses(from: OrderStatus): readonly OrderStatus[] {
  return NEXT[from]
}

/** Whether an order in `from` can move no further. */
export function isFinal(from: OrderStatus): boolean {
  return NEXT[from].length === 0
}

/** The answer to "may this order move from `from` to `to`?". */
export type TransitionCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string }

/**
 * Checks one status change. A status the lifecycle does not know (a legacy
 * row with an odd value) refuses every change rather than guessing.
 */
export function checkTransition(from: string, to: string): TransitionCheck {
  if (!isOrderStatus(to)) return { ok: false, reason: `unknown target status '${to}'; use one of ${TARGET_STATUSES.join(', ')}` }
  if (!isOrderStatus(from)) return { ok: false, reason: `the order has status '${from}', which the lifecycle does not know; it cannot be changed through this service` }
  if (from === to) return { ok: false, reason: `the order is already ${to}` }
  if (NEXT[from].includes(to)) return { ok: true }
  const allowed = NEXT[from]
  return {
    ok: false,
    reason: allowed.length === 0 ? `the order is ${from}, a final status; it cannot change` : `an order that is ${from} can move only to ${allowed.join(' or ')}, not ${to}`,
  }
}

/**
 * The status the load generator moves an order to next along the happy path
 * (with `cancel` true: cancelled, where allowed); undefined when final.
 */
export function happyNext(from: OrderStatus, cancel = false): OrderStatus | undefined {
  if (cancel && NEXT[from].includes('cancelled')) return 'cancelled'
  return NEXT[from].find((s) => s !== 'cancelled')
}
