/**
 * Request and response schemas (JSON Schema, checked by fastify's own Ajv).
 * Ids travel as decimal strings: a JSON number, a leading zero, a sign or a
 * value above 2^63-1 is refused with 400 naming the field. Money is integer
 * cents. Strings are capped at the column widths of the legacy table
 * (counted in characters, as MariaDB counts them for utf8mb4).
 */
import { TARGET_STATUSES } from './lifecycle.js'

const INT63_MAX = (1n << 63n) - 1n
const DECIMAL_RE = /^(0|[1-9][0-9]{0,18})$/

/** Whether `s` is a canonical decimal id in 0..2^63-1 (the `int63` format). */
export function isInt63(s: string): boolean {
  return DECIMAL_RE.test(s) && BigInt(s) <= INT63_MAX
}

/** Ajv formats the service registers (`int63`). */
export const FORMATS = { int63: isInt63 } as const

/** Largest order total accepted, in cents (a JS safe integer, well inside BIGINT). */
export const MAX_TOTAL_CENTS = Number.MAX_SAFE_INTEGER
/** Default request body limit in bytes. */
export const DEFAULT_BODY_LIMIT = 64 * 1024

const id = { type: 'string', format: 'int63', maxLength: 19 } as const

/** Body of POST /orders. */
export const createOrderBody = {
  type: 'object',
  additionalProperties: false,
  required: ['user_id', 'merchant_id', 'items', 'total_cents'],
  properties: {
    user_id: id,
    merchant_id: id,
    total_cents: { type: 'integer', minimum: 0, maximum: MAX_TOTAL_CENTS },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['sku', 'qty', 'price_cents'],
        properties: {
          sku: { type: 'string', minLength: 1, maxLength: 64 },
          name: { type: 'string', maxLength: 120 },
          qty: { type: 'integer', minimum: 1, maximum: 999 },
          price_cents: { type: 'integer', minimum: 0, maximum: MAX_TOTAL_CENTS },
          options: { type: 'array', maxItems: 10, items: { type: 'string', maxLength: 64 } },
        },
      },
    },
    address: { type: ['string', 'null'], maxLength: 255 },
    phone: { type: ['string', 'null'], maxLength: 32 },
    note: { type: ['string', 'null'], maxLength: 255 },
  },
} as const

/** Body of POST /orders/:orderId/status. */
export const statusBody = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: {
    status: { type: 'string', enum: [...TARGET_STATUSES] },
    /** Optimistic check: the version the client last read. */
    version: { type: 'integer', minimum: 1, maximum: 4294967295 },
  },
} as const

export const orderIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['orderId'],
  properties: { orderId: id },
} as const

export const userParams = { type: 'object', required: ['userId'], properties: { userId: id } } as const
export const merchantParams = { type: 'object', required: ['merchantId'], properties: { merchantId: id } } as const

/** Query of the list routes. Coercion is off (so ids are never numbers), hence `limit` as digits. */
export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' },
    cursor: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' },
  },
} as const

/** The body of a created order as the client sends it (after validation). */
export interface CreateOrderBody {
  readonly user_id: string
  readonly merchant_id: string
  readonly total_cents: number
  readonly currency?: string
  readonly items: ReadonlyArray<{ sku: string; name?: string; qty: number; price_cents: number; options?: string[] }>
  readonly address?: string | null
  readonly phone?: string | null
  readonly note?: string | null
}

export interface StatusBody {
  readonly status: (typeof TARGET_STATUSES)[number]
  readonly version?: number
}

/** The largest page a client may ask for. */
export const MAX_PAGE = 200
