/**
 * `order_lookup` (control database): legacy order id -> user and merchant id.
 * Legacy ids carry no shard, so once reads or writes go to the user
 * dimension, a legacy id routes through this row. The store writes it before
 * the primary transaction of a legacy id (an orphan row left by a failed
 * write is harmless: the shard it points to has no such order, as with
 * Vitess' consistent lookup) and removes it after a delete.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { Runtime } from '../runtime/runtime.js'
import { qualified } from '../runtime/mysql.js'

/** The keys a legacy order id routes by. */
export interface LookupRow {
  readonly orderId: string
  readonly userId: string
  readonly merchantId: string
}

function table(rt: Runtime): string {
  return qualified(rt.config.control.database, 'order_lookup')
}

/** The lookup row of a legacy order id, if any. */
export async function readLookup(rt: Runtime, orderId: string): Promise<LookupRow | undefined> {
  const [rows] = await rt.control().query<RowDataPacket[]>(`SELECT user_id, merchant_id FROM ${table(rt)} WHERE order_id = ?`, [orderId])
  const r = rows[0]
  return r ? { orderId, userId: String(r.user_id), merchantId: String(r.merchant_id) } : undefined
}

/** Inserts or refreshes the lookup row of a legacy order id. Idempotent. */
export async function writeLookup(rt: Runtime, row: LookupRow): Promise<void> {
  await rt
    .control()
    .query(`INSERT INTO ${table(rt)} (order_id, user_id, merchant_id) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE user_id = VALUES(user_id), merchant_id = VALUES(merchant_id)`, [
      row.orderId,
      row.userId,
      row.merchantId,
    ])
}

/** Removes the lookup row of a deleted legacy order. Idempotent. */
export async function deleteLookup(rt: Runtime, orderId: string): Promise<void> {
  await rt.control().query(`DELETE FROM ${table(rt)} WHERE order_id = ?`, [orderId])
}
