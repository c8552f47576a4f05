/**
 * Between store rows (legacy column names, BIGINTs as strings, DATETIME(3)
 * text in UTC) and the API's JSON (ids as strings, money and versions as
 * integers, ISO-8601 times, items as an array). Pure.
 */
import type { OrderRow } from '../../src/index.js'
import type { CreateOrderBody } from './schemas.js'

/** An order as the API returns it. */
export interface OrderJson {
  readonly order_id: string
  readonly user_id: string
  readonly merchant_id: string
  readonly status: string
  readonly total_cents: number
  readonly currency: string
  readonly items: unknown
  readonly address: string | null
  readonly phone: string | null
  readonly note: string | null
  readonly version: number
  readonly created_at: string
  readonly updated_at: string
}

/** 'YYYY-MM-DD HH:MM:SS.mmm' (UTC) for DATETIME(3) columns. */
export function formatDbTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '')
}

function isoOf(v: unknown): string {
  const s = String(v)
  return /^\d{4}-\d{2}-\d{2} /.test(s) ? `${s.replace(' ', 'T')}${s.includes('.') ? '' : '.000'}Z` : s
}

function itemsOf(v: unknown): unknown {
  if (typeof v !== 'string') return v
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))

/** The API's JSON for a store row. */
export function toOrderJson(r: OrderRow): OrderJson {
  return {
    order_id: String(r.order_id),
    user_id: String(r.user_id),
    merchant_id: String(r.merchant_id),
    status: String(r.status),
    total_cents: Number(r.total_cents),
    currency: String(r.currency ?? 'CNY'),
    items: itemsOf(r.items),
    address: str(r.address),
    phone: str(r.phone),
    note: str(r.note),
    version: Number(r.version ?? 1),
    created_at: isoOf(r.created_at),
    updated_at: isoOf(r.updated_at),
  }
}

/** The row to insert for a validated create body. */
export function rowForCreate(orderId: string, b: CreateOrderBody, nowMs: number): OrderRow {
  const t = formatDbTime(nowMs)
  return {
    order_id: orderId,
    user_id: b.user_id,
    merchant_id: b.merchant_id,
    status: 'created',
    total_cents: String(b.total_cents),
    currency: b.currency ?? 'CNY',
    items: JSON.stringify(b.items),
    address: b.address ?? null,
    phone: b.phone ?? null,
    note: b.note ?? null,
    version: 1,
    created_at: t,
    updated_at: t,
  }
}
