/**
 * The scatter walk cursor (issue 17): the boundary, the "main order ended"
 * flag and each lagging shard's position survive the round trip; plain v1
 * cursors are still read and still written when nothing lags; a cursor that
 * names a shard the query does not read, twice, or with a malformed position
 * is refused naming "after".
 */
import { describe, expect, it } from 'vitest'
import { decodeWalk, encodeWalk, type WalkState } from '../../src/router/scatter-cursor.js'
import { encodeCursor, type SortColumn } from '../../src/router/keyset.js'
import { isShardkitError } from '../../src/errors.js'

const order: SortColumn[] = [
  { column: 'created_at', direction: 'desc', kind: 'temporal' },
  { column: 'order_id', direction: 'asc', kind: 'int' },
]
const ALL = Array.from({ length: 120 }, (_, i) => i)
const key = ['2026-01-01 00:00:00.000', '42']

function refused(cursor: string, shards = ALL): void {
  try {
    decodeWalk(cursor, 'fp', order, shards)
    expect.fail(`accepted ${Buffer.from(cursor, 'base64url').toString()}`)
  } catch (err) {
    expect(isShardkitError(err, 'USAGE')).toBe(true)
    expect((err as { details: { argument: string } }).details.argument).toBe('after')
  }
}
const raw = (body: unknown) => Buffer.from(JSON.stringify(body)).toString('base64url')

describe('scatter walk cursor', () => {
  it('round-trips the boundary, the end flag and the lagging shards with their positions', () => {
    const state: WalkState = { after: key, ended: false, lagging: new Map([[77, ['2026-01-02 00:00:00.000', '7']], [3, undefined]]) }
    const back = decodeWalk(encodeWalk('fp', state), 'fp', order, ALL)
    expect(back.after).toEqual(key)
    expect(back.ended).toBe(false)
    expect([...back.lagging]).toEqual([[3, undefined], [77, ['2026-01-02 00:00:00.000', '7']]])
    const ended = decodeWalk(encodeWalk('fp', { after: undefined, ended: true, lagging: new Map([[5, undefined]]) }), 'fp', order, ALL)
    expect(ended).toEqual({ after: undefined, ended: true, lagging: new Map([[5, undefined]]) })
  })

  it('writes and reads the v1 cursor when nothing lags', () => {
    const c = encodeWalk('fp', { after: key, ended: false, lagging: new Map() })
    expect(c).toBe(encodeCursor('fp', key))
    expect(decodeWalk(c, 'fp', order, ALL)).toEqual({ after: key, ended: false, lagging: new Map() })
  })

  it('refuses another query, unknown or repeated shards and malformed positions', () => {
    const good = encodeWalk('fp', { after: key, ended: false, lagging: new Map([[7, key]]) })
    refused(encodeWalk('other', { after: key, ended: false, lagging: new Map([[7, key]]) }))
    refused(good, [1, 2, 3]) // a single-shard query cannot owe shard 7
    refused(raw({ v: 2, f: 'fp', k: key, m: [[7, key], [7, null]] }))
    refused(raw({ v: 2, f: 'fp', k: key, m: [[120, null]] }))
    refused(raw({ v: 2, f: 'fp', k: key, m: [[7, ['x', 'DROP TABLE']]] }))
    refused(raw({ v: 2, f: 'fp', k: key, m: [[7, [key[0]]]] }))
    refused(raw({ v: 2, f: 'fp', k: key, e: true, m: [] }))
    refused(raw({ v: 2, f: 'fp', k: key }))
    refused(raw({ v: 3, f: 'fp', k: key, m: [] }))
  })
})
