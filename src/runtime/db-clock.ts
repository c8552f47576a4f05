/**
 * The one clock the guards trust: the control database's (`UTC_TIMESTAMP(3)`).
 * When a stage was entered, when a verify started and finished, when a lock
 * expires are all read from it, never from the machine a command runs on, so
 * hosts with skewed clocks still order them the same way.
 */
import type { RowDataPacket } from 'mysql2/promise'
import type { Runtime } from './runtime.js'

/** The control database's time now, as an ISO-8601 UTC string (ms). */
export async function controlNow(rt: Runtime): Promise<string> {
  const [rows] = await rt.control().query<RowDataPacket[]>('SELECT UTC_TIMESTAMP(3) AS now')
  return `${String(rows[0]!.now).replace(' ', 'T')}Z`
}
