/**
 * Scatter order columns of floating kinds on real MariaDB (issue 17, point
 * 5). A FLOAT is printed to about 6 digits, so a cursor carrying `0.1`
 * resumed with `score > 0.1`, which the stored 0.10000000149011612 matches
 * again: the walk looped. FLOAT order columns (REAL under `REAL_AS_FLOAT`
 * included) are refused with a USAGE error naming the column and the fix;
 * DOUBLE and DECIMAL still page every row exactly once, in order; a FLOAT can
 * still be selected and filtered on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pool } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { scatter, type ScatterOrder } from '../../src/router/scatter.js'
import { isShardkitError, type ShardkitError } from '../../src/errors.js'
import { adminPool, createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'

const prefix = testPrefix('scatterflt')
const config = testFleetConfig({ prefix })
let rt: Runtime
let admin: Pool

/** Few distinct values, none exact in binary, so ties are broken by order_id and FLOAT rounding shows. */
const VALUES = ['0.1', '0.2', '0.3', '0.7', '1.1', '2.675']
interface TestRow {
  order_id: string
  value: string
}
const rows: TestRow[] = Array.from({ length: 36 }, (_, i) => ({ order_id: String(5000 + i * 7), value: VALUES[(i * 5) % VALUES.length]! }))

beforeAll(async () => {
  await createLegacyTable(config)
  admin = adminPool()
  const legacy = qualified(config.legacy.database, config.legacy.table)
  const conn = await admin.getConnection()
  try {
    await conn.query(`ALTER TABLE ${legacy} ADD COLUMN fscore FLOAT NOT NULL DEFAULT 0, ADD COLUMN dscore DOUBLE NOT NULL DEFAULT 0, ADD COLUMN nscore DECIMAL(12,4) NOT NULL DEFAULT 0`)
    // REAL is a FLOAT under this mode, and information_schema then says so
    await conn.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',REAL_AS_FLOAT')")
    await conn.query(`ALTER TABLE ${legacy} ADD COLUMN rscore REAL NOT NULL DEFAULT 0`)
  } finally {
    conn.release()
  }
  rt = openRuntime(config)
  const report = await provision(rt)
  expect(report.conflicts).toEqual([])
  for (const [i, r] of rows.entries()) {
    const p = config.dimensions.user.shards[(i * 13) % 120]!
    await admin.query(
      `INSERT INTO ${qualified(p.database, p.table)} (order_id, user_id, merchant_id, status, total_cents, items, created_at, updated_at, fscore, dscore, nscore, rscore) VALUES (?, ?, 1, 'paid', 100, '[]', NOW(3), NOW(3), ?, ?, ?, ?)`,
      [r.order_id, String(((i * 13) % 120) + 120 * (i + 1)), r.value, r.value, r.value, r.value],
    )
  }
})
afterAll(async () => {
  await admin?.end()
  await rt?.close()
  await dropPrefixedDatabases(prefix)
})

/** Walks a scatter ordered by `orderBy`, at most `maxPages` pages; the error it threw, if any. */
async function walk(orderBy: ScatterOrder[], maxPages: number): Promise<{ ids: string[]; pages: number; error?: ShardkitError }> {
  const ids: string[] = []
  let pages = 0
  let after: string | undefined
  try {
    do {
      const page = await scatter(rt, { dimension: 'user', orderBy, limit: 4, after, explicit: true })
      ids.push(...page.rows.map((r) => String(r.order_id)))
      after = page.nextCursor
      pages++
    } while (after !== undefined && pages < maxPages)
  } catch (err) {
    if (!isShardkitError(err)) throw err
    return { ids, pages, error: err }
  }
  return { ids, pages }
}

/** The expected order by the exact decimal values, then order_id. */
function expected(direction: 'asc' | 'desc'): string[] {
  const sign = direction === 'asc' ? 1 : -1
  return [...rows].sort((a, b) => sign * (Number(a.value) - Number(b.value)) || Number(a.order_id) - Number(b.order_id)).map((r) => r.order_id)
}

describe('scatter ordered by floating and decimal columns (issue 17)', () => {
  it('pages by DOUBLE and by DECIMAL return every row exactly once, in order', async () => {
    for (const column of ['dscore', 'nscore']) {
      for (const direction of ['asc', 'desc'] as const) {
        const r = await walk([{ column, direction }], 50)
        expect(r.error).toBeUndefined()
        expect(r.ids, `${column} ${direction}`).toEqual(expected(direction))
        expect(r.pages).toBe(Math.ceil(rows.length / 4))
      }
    }
  })

  it('refuses a FLOAT order column (it looped: the cursor carried the printed 0.1), naming the column and the fix', async () => {
    // Bounded: on the old code this walk returned the same rows page after page and never ran out of cursors.
    const r = await walk([{ column: 'fscore', direction: 'asc' }], 3 * Math.ceil(rows.length / 4))
    expect({ code: r.error?.code, pages: r.pages, rowsReturned: r.ids.length }).toEqual({ code: 'USAGE', pages: 0, rowsReturned: 0 })
    expect(r.error!.details.argument).toBe('orderBy[0].column')
    expect(r.error!.message).toContain('"fscore", a FLOAT')
    expect(r.error!.message).toMatch(/DOUBLE/)
    expect(r.error!.message).toMatch(/DECIMAL/)
  })

  it('refuses REAL created under REAL_AS_FLOAT (a FLOAT) too, in any position of the order', async () => {
    const r = await walk([{ column: 'dscore', direction: 'desc' }, { column: 'rscore', direction: 'asc' }], 30)
    expect(r.error?.code).toBe('USAGE')
    expect(r.error!.details.argument).toBe('orderBy[1].column')
    expect(r.error!.message).toContain('"rscore", a FLOAT')
  })

  it('still selects and filters on a FLOAT column', async () => {
    const page = await scatter(rt, { dimension: 'user', columns: ['order_id', 'fscore'], where: [{ column: 'fscore', op: '>', value: 0.5 }], limit: 100, explicit: true })
    expect(page.rows.map((r) => String(r.order_id))).toEqual(rows.filter((r) => Number(r.value) > 0.5).map((r) => r.order_id).sort((a, b) => Number(a) - Number(b)))
  })
})
