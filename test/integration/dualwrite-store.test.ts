import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { RowDataPacket } from 'mysql2/promise'
import { provision } from '../../src/provision/index.js'
import { openRuntime, type Runtime } from '../../src/runtime/runtime.js'
import { qualified } from '../../src/runtime/mysql.js'
import { readsFromShards } from '../../src/cutover/stages.js'
import { DualWriteStore } from '../../src/dualwrite/store.js'
import { drainJournal, readJournalDepth } from '../../src/dualwrite/journal.js'
import { legacyLocation, primaryDatabases, primaryOf, shardLocation, type Location } from '../../src/dualwrite/placement.js'
import { replicate } from '../../src/dualwrite/replicate.js'
import { JournalClearer } from '../../src/dualwrite/journal-clearer.js'
import { rowShape } from '../../src/dualwrite/connections.js'
import { silentLogger } from '../../src/runtime/logger.js'
import { createLegacyTable, dropPrefixedDatabases, testFleetConfig, testPrefix } from '../support/db.js'
import { FixedStage, hostPools, newOrderId, orderRow, physicalRow } from './dualwrite-support.js'

const prefix = testPrefix('dwstore')
const config = testFleetConfig({ prefix })
const pools = hostPools(config)
let rt: Runtime
let stage: FixedStage
let store: DualWriteStore

const legacy = legacyLocation(config)
const userLoc = (u: string) => shardLocation(config, 'user', u)
const merchantLoc = (m: string) => shardLocation(config, 'merchant', m)
const at = (l: Location, id: string) => physicalRow(pools.get(l.host), l, id)

async function copies(orderId: string, userId: string, merchantId: string) {
  return { legacy: await at(legacy, orderId), user: await at(userLoc(userId), orderId), merchant: await at(merchantLoc(merchantId), orderId) }
}

async function depthAfterFlush(): Promise<number> {
  await store.flush()
  return (await readJournalDepth(rt)).total
}

async function plant(l: Location, orderId: string, note: string): Promise<void> {
  await pools.get(l.host).query(`UPDATE ${qualified(l.database, l.table)} SET note = ? WHERE order_id = ?`, [note, orderId])
}

beforeAll(async () => {
  await createLegacyTable(config)
  rt = openRuntime(config)
  await provision(rt)
  stage = new FixedStage(config, pools.get)
  store = new DualWriteStore({ runtime: rt, stage, random: () => 0 })
})
afterAll(async () => {
  await rt?.close()
  await pools.end()
  await dropPrefixedDatabases(prefix)
})

describe('dual-write store: where each stage writes and reads', () => {
  it('legacy: writes and reads touch legacy only', async () => {
    await stage.set('legacy')
    const id = newOrderId('1001')
    await store.insert(orderRow(id, '1001', '501'))
    const c = await copies(id, '1001', '501')
    expect(c.legacy?.status).toBe('created')
    expect(c.user).toBeUndefined()
    expect(c.merchant).toBeUndefined()
    expect((await store.get(id))?.order_id).toBe(id)
    expect(await depthAfterFlush()).toBe(0)
  })

  it('dual-write: legacy first, then identical user and merchant copies; the journal row is cleared', async () => {
    await stage.set('dual-write')
    const id = newOrderId('1002')
    await store.insert(orderRow(id, '1002', '502', { note: 'hello' }))
    const c = await copies(id, '1002', '502')
    expect(c.legacy).toBeDefined()
    expect(c.user).toEqual(c.legacy)
    expect(c.merchant).toEqual(c.legacy)
    expect(c.legacy!.version).toBe(1)
    // the copy was proven by the re-read, not replayed under a lock
    expect(store.stats().lockedReplays).toBe(0)
    expect(await depthAfterFlush()).toBe(0)
    // reads still come from legacy
    await plant(userLoc('1002'), id, 'shard copy')
    expect((await store.get(id))?.note).toBe('hello')
  })

  it('shadow-read: sampled reads also go to the shards; a difference is counted, legacy answers', async () => {
    await stage.set('shadow-read')
    const id = newOrderId('1003')
    await store.insert(orderRow(id, '1003', '503', { note: 'same' }))
    const before = store.stats()
    expect((await store.get(id))?.note).toBe('same')
    expect(store.stats().shadowReads).toBe(before.shadowReads + 1)
    expect(store.stats().shadowMismatches).toBe(before.shadowMismatches)
    await plant(userLoc('1003'), id, 'drifted')
    expect((await store.get(id))?.note).toBe('same')
    expect(store.stats().shadowMismatches).toBe(before.shadowMismatches + 1)
    const page = await store.listByUser('1003')
    expect(page.rows.map((r) => r.note)).toEqual(['same'])
    expect(store.stats().shadowMismatches).toBe(before.shadowMismatches + 2)
  })

  it('read-shards: users in the ramp read the shards, the others legacy', async () => {
    await stage.set('read-shards', 50)
    const users = Array.from({ length: 40 }, (_, i) => String(2000 + i))
    const inRamp = users.find((u) => readsFromShards(stage.state, u))!
    const outRamp = users.find((u) => !readsFromShards(stage.state, u))!
    for (const u of [inRamp, outRamp]) {
      const id = newOrderId(u)
      await store.insert(orderRow(id, u, '504', { note: 'legacy view' }))
      // Copies confirmed and the journal row gone: while the journal owes a copy, reads come from legacy.
      await store.flush()
      await plant(userLoc(u), id, 'shard view')
      await plant(merchantLoc('504'), id, 'shard view')
      const expected = u === inRamp ? 'shard view' : 'legacy view'
      expect((await store.get(id))?.note).toBe(expected)
      expect((await store.listByUser(u)).rows.map((r) => r.note)).toEqual([expected])
    }
  })

  it('write-shards: the user shard is the primary, then merchant and legacy', async () => {
    await stage.set('write-shards')
    const id = newOrderId('1005')
    await store.insert(orderRow(id, '1005', '505'))
    const c = await copies(id, '1005', '505')
    expect(c.user).toBeDefined()
    expect(c.merchant).toEqual(c.user)
    expect(c.legacy).toEqual(c.user)
    const after = await store.update(id, { status: 'paid' })
    expect(after.version).toBe(2)
    expect((await at(legacy, id))?.status).toBe('paid')
    expect(await depthAfterFlush()).toBe(0)
  })

  it('a write planned under an older stage version is refused by the fence and lands nowhere', async () => {
    await stage.set('write-shards')
    const stale = new DualWriteStore({ runtime: rt, stage: { current: () => ({ ...stage.state, version: stage.state.version - 1 }), ready: false } })
    const id = newOrderId('1006')
    await expect(stale.insert(orderRow(id, '1006', '506'))).rejects.toMatchObject({ code: 'FENCE_REJECTED', retryable: true })
    expect(await copies(id, '1006', '506')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
    expect(stale.stats().fenceRejections).toBe(1)
  })

  it('an unfenced database (no fence row) is written only at legacy', async () => {
    const clear = async () => {
      for (const p of primaryDatabases(config)) await pools.get(p.host).query(`DELETE FROM ${qualified(p.database, 'shardkit_fence')}`)
    }
    await stage.set('legacy')
    await clear()
    const a = newOrderId('1008')
    await store.insert(orderRow(a, '1008', '508'))
    expect(await at(legacy, a)).toBeDefined()
    await stage.set('dual-write')
    await clear()
    const b = newOrderId('1008')
    await expect(store.insert(orderRow(b, '1008', '508'))).rejects.toThrow()
    expect(await copies(b, '1008', '508')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
  })

  it('shards: legacy is no longer written', async () => {
    await stage.set('shards')
    const id = newOrderId('1007')
    await store.insert(orderRow(id, '1007', '507'))
    const c = await copies(id, '1007', '507')
    expect(c.user).toBeDefined()
    expect(c.merchant).toEqual(c.user)
    expect(c.legacy).toBeUndefined()
    expect((await store.get(id))?.order_id).toBe(id)
  })
})

describe('dual-write store: updates, deletes, legacy ids, lists', () => {
  beforeEach(async () => {
    await stage.set('dual-write')
  })

  it('update bumps the version, honours expectedVersion, moves a merchant change, refuses a user change', async () => {
    const id = newOrderId('1101')
    await store.insert(orderRow(id, '1101', '601'))
    const r = await store.update(id, { status: 'paid' }, { expectedVersion: 1 })
    expect(r).toMatchObject({ status: 'paid', version: 2 })
    await expect(store.update(id, { status: 'x' }, { expectedVersion: 1 })).rejects.toMatchObject({ code: 'VERSION_CONFLICT' })

    const moved = await store.update(id, { merchant_id: '602' })
    expect(moved.merchant_id).toBe('602')
    expect(await at(merchantLoc('601'), id)).toBeUndefined()
    expect(await at(merchantLoc('602'), id)).toEqual(await at(legacy, id))
    expect((await at(userLoc('1101'), id))?.merchant_id).toBe('602')

    await expect(store.update(id, { user_id: '1102' })).rejects.toMatchObject({ code: 'SHARD_KEY_IMMUTABLE' })
    const c = await copies(id, '1101', '602')
    expect(c.legacy).toMatchObject({ user_id: '1101', version: 3 })
    expect(c.user).toEqual(c.legacy)
    await expect(store.update(newOrderId('1101'), { status: 'x' })).rejects.toMatchObject({ code: 'ORDER_NOT_FOUND' })
    expect(await depthAfterFlush()).toBe(0)
  })

  it('delete removes every copy; deleting a missing order does nothing', async () => {
    const id = newOrderId('1103')
    await store.insert(orderRow(id, '1103', '603'))
    await store.delete(id)
    expect(await copies(id, '1103', '603')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
    await store.delete(id)
    expect(await store.get(id)).toBeUndefined()
  })

  it('legacy ids get order_lookup rows and route through them once the user shard is primary', async () => {
    const id = '4242'
    await store.insert(orderRow(id, '1104', '604'))
    const [lk] = await rt.control().query<RowDataPacket[]>(`SELECT user_id, merchant_id FROM ${qualified(config.control.database, 'order_lookup')} WHERE order_id = ?`, [id])
    expect(lk).toEqual([{ user_id: '1104', merchant_id: '604' }])
    await stage.set('write-shards')
    await plant(userLoc('1104'), id, 'from the user shard')
    expect((await store.get(id))?.note).toBe('from the user shard')
    await store.update(id, { status: 'paid' })
    expect((await at(legacy, id))?.status).toBe('paid')
    await store.delete(id)
    expect(await copies(id, '1104', '604')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
  })

  it('lists page newest first on (created_at, order_id), from legacy and from the shards', async () => {
    const user = '1105'
    const ids: string[] = []
    for (let i = 0; i < 7; i++) {
      const id = newOrderId(user)
      ids.push(id)
      // two pairs share a created_at, so the order id breaks ties
      await store.insert(orderRow(id, user, String(700 + (i % 2)), { created_at: `2026-01-0${1 + Math.floor(i / 2)} 10:00:00.000` }))
    }
    const expected = ids.map((id, i) => ({ id, c: Math.floor(i / 2) })).sort((a, b) => b.c - a.c || (BigInt(b.id) > BigInt(a.id) ? 1 : -1)).map((x) => x.id)
    for (const s of ['dual-write', 'shards'] as const) {
      await stage.set(s)
      const seen: string[] = []
      let cursor: string | undefined
      for (let pages = 0; pages < 5; pages++) {
        const page = await store.listByUser(user, { limit: 3, ...(cursor ? { cursor } : {}) })
        seen.push(...page.rows.map((r) => String(r.order_id)))
        cursor = page.nextCursor
        if (!cursor) break
      }
      expect(seen).toEqual(expected)
      const m = await store.listByMerchant('700', { limit: 100 })
      expect(m.rows.map((r) => String(r.order_id))).toEqual(expected.filter((id) => ids.indexOf(id) % 2 === 0))
    }
  })

  it('onPrimaryWrite runs inside the primary transaction: if it throws, nothing is written anywhere', async () => {
    const seen: string[] = []
    const hooked = new DualWriteStore({
      runtime: rt,
      stage,
      onPrimaryWrite: async (ctx) => {
        seen.push(`${ctx.side}:${ctx.op}:${String(ctx.row.order_id)}:${String(ctx.row.currency)}`)
        if (ctx.row.note === 'boom') throw new Error('outbox down')
      },
    })
    const ok = newOrderId('1106')
    await hooked.insert(orderRow(ok, '1106', '606'))
    expect(seen).toEqual([`legacy:insert:${ok}:CNY`])
    const bad = newOrderId('1106')
    await expect(hooked.insert(orderRow(bad, '1106', '606', { note: 'boom' }))).rejects.toThrow()
    expect(await copies(bad, '1106', '606')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
    await hooked.flush()
    expect(await depthAfterFlush()).toBe(0)
  })
})

describe('dual-write journal replay', () => {
  const journal = qualified(config.legacy.database, 'shardkit_journal')
  const addEntry = async (orderId: string, userId: string, merchantId: string) => {
    await store.flush()
    await rt.legacy().query(`INSERT INTO ${journal} (order_id, op, secondaries, user_id, merchant_id) VALUES (?, 'update', 'user,merchant', ?, ?)`, [orderId, userId, merchantId])
  }

  it('copies the primary row to secondaries that lost it, and a second replay changes nothing', async () => {
    await stage.set('dual-write')
    const id = newOrderId('1201')
    await store.insert(orderRow(id, '1201', '701'))
    await pools.get(userLoc('1201').host).query(`DELETE FROM ${qualified(userLoc('1201').database, userLoc('1201').table)} WHERE order_id = ?`, [id])
    await plant(merchantLoc('701'), id, 'stale')
    await addEntry(id, '1201', '701')
    expect(await drainJournal(rt)).toMatchObject({ replayed: 1, failed: 0, remaining: 0 })
    const c = await copies(id, '1201', '701')
    expect(c.user).toEqual(c.legacy)
    expect(c.merchant).toEqual(c.legacy)
    await addEntry(id, '1201', '701')
    await addEntry(id, '1201', '701')
    expect(await drainJournal(rt)).toMatchObject({ replayed: 2, failed: 0, remaining: 0 })
    expect(await copies(id, '1201', '701')).toEqual(c)
  })

  it('never resurrects a row the primary deleted, and never overwrites a newer secondary row', async () => {
    await stage.set('dual-write')
    const gone = newOrderId('1202')
    await store.insert(orderRow(gone, '1202', '702'))
    await rt.legacy().query(`DELETE FROM ${qualified(legacy.database, legacy.table)} WHERE order_id = ?`, [gone])
    await addEntry(gone, '1202', '702')
    await drainJournal(rt)
    expect(await copies(gone, '1202', '702')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })

    const newer = newOrderId('1203')
    await store.insert(orderRow(newer, '1203', '703'))
    const u = userLoc('1203')
    await pools.get(u.host).query(`UPDATE ${qualified(u.database, u.table)} SET version = 9, note = 'newer' WHERE order_id = ?`, [newer])
    await addEntry(newer, '1203', '703')
    await drainJournal(rt)
    expect(await at(u, newer)).toMatchObject({ version: 9, note: 'newer' })
    expect(await at(merchantLoc('703'), newer)).toEqual(await at(legacy, newer))
  })

  it('a copy that lands after a concurrent delete is stopped by the delete\'s tombstones', async () => {
    await stage.set('dual-write')
    const id = newOrderId('1204')
    await store.insert(orderRow(id, '1204', '704'))
    const image = await at(legacy, id)
    // A delete commits and replicates; our (older) write's copy lands after it.
    await store.delete(id)
    await store.flush()
    await rt.legacy().query(`INSERT INTO ${journal} (order_id, op, secondaries, user_id, merchant_id) VALUES (?, 'insert', 'user,merchant', '1204', '704')`, [id])
    const [[{ jid }]] = (await rt.legacy().query(`SELECT MAX(id) AS jid FROM ${journal}`)) as unknown as [[{ jid: string }]]
    const clearer = new JournalClearer(rt, silentLogger)
    const out = await replicate(
      { rt, shape: await rowShape(rt), timeoutMs: 2_000, parallel: false, clearer },
      { primary: primaryOf(legacy), at: legacy, orderId: id, image: image!, keys: { userId: '1204', merchantId: '704' }, secondaries: ['user', 'merchant'], journalId: String(jid), plannedVersion: stage.state.version },
    )
    await clearer.flush()
    // Superseded: the tombstones say a later write (the delete) removed the order from every copy.
    expect(out).toMatchObject({ ok: true, reread: false })
    expect(await copies(id, '1204', '704')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
    expect(await depthAfterFlush()).toBe(0)
  })

  it('with asyncSecondaries the request returns after the primary commit and the copies follow', async () => {
    await stage.set('dual-write')
    const fast = new DualWriteStore({ runtime: rt, stage, asyncSecondaries: true, parallelSecondaries: true })
    const id = newOrderId('1205')
    await fast.insert(orderRow(id, '1205', '705'))
    expect(await at(legacy, id)).toBeDefined()
    await fast.flush()
    const c = await copies(id, '1205', '705')
    expect(c.user).toEqual(c.legacy)
    expect(c.merchant).toEqual(c.legacy)
    expect(await depthAfterFlush()).toBe(0)
  })

  it('concurrent updates and a delete racing on the same orders leave every copy equal to the primary', async () => {
    await stage.set('dual-write')
    const orders = ['1301', '1302', '1303'].map((u) => ({ id: newOrderId(u), u, m: String(800 + Number(u) % 3) }))
    for (const o of orders) await store.insert(orderRow(o.id, o.u, o.m))
    const racer = new DualWriteStore({ runtime: rt, stage, parallelSecondaries: true })
    await Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; i < 15; i++) {
          const o = orders[(w + i) % orders.length]!
          const s = w % 2 === 0 ? store : racer
          if (w === 5 && i === 7) await s.delete(orders[2]!.id)
          else await s.update(o.id, { note: `w${w}i${i}` }).catch((err: { code?: string }) => expect(err.code).toBe('ORDER_NOT_FOUND'))
        }
      }),
    )
    await store.flush()
    await racer.flush()
    for (const o of orders) {
      const c = await copies(o.id, o.u, o.m)
      expect(c.user, o.id).toEqual(c.legacy)
      expect(c.merchant, o.id).toEqual(c.legacy)
    }
    expect(await copies(orders[2]!.id, orders[2]!.u, orders[2]!.m)).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
    expect(await depthAfterFlush()).toBe(0)
  })

  it('copies that run after a write-primary switch never land in the new primary, and end consistent', async () => {
    const before = await stage.set('read-shards', 100)
    const id = newOrderId('1401')
    await store.insert(orderRow(id, '1401', '801'))
    await store.flush()
    // W: committed on legacy under `read-shards` (its journal row with it); its copies stall.
    await rt.legacy().query(`UPDATE ${qualified(legacy.database, legacy.table)} SET note = 'W', version = 2 WHERE order_id = ?`, [id])
    const w = (await at(legacy, id))!
    await addEntry(id, '1401', '801')
    const [[{ jid }]] = (await rt.legacy().query(`SELECT MAX(id) AS jid FROM ${journal}`)) as unknown as [[{ jid: string }]]
    // The switch drains the journal inside the fence, then flips; the new primary deletes the order.
    expect(await drainJournal(rt)).toMatchObject({ failed: 0, remaining: 0 })
    await stage.set('write-shards')
    await store.delete(id)
    await store.flush()
    expect(await copies(id, '1401', '801')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
    // W's stalled copies run now.
    const clearer = new JournalClearer(rt, silentLogger)
    const out = await replicate(
      { rt, shape: await rowShape(rt), timeoutMs: 2_000, parallel: false, clearer },
      { primary: primaryOf(legacy), at: legacy, orderId: id, image: w, keys: { userId: '1401', merchantId: '801' }, secondaries: ['user', 'merchant'], journalId: String(jid), plannedVersion: before.version },
    )
    await clearer.flush()
    // W's stale copies change nothing: the moved fence stops the user copy, the delete's tombstones both.
    expect(out).toMatchObject({ ok: true, failures: [] })
    expect(await copies(id, '1401', '801')).toEqual({ legacy: undefined, user: undefined, merchant: undefined })
    expect(await depthAfterFlush()).toBe(0)
  })
})
