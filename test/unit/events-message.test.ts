/** The wire contract: decode errors name the field, round trips, routing and binding keys. */
import { describe, expect, it } from 'vitest'
import { isShardkitError } from '../../src/errors.js'
import { EVENT_PARTITIONS, bindingKey, decodeEvent, encodeEvent, partitionOfUser, routingKeyOf, type OrderEvent } from '../../src/events/message.js'

const good: OrderEvent = {
  eventId: '0190f1e2-aaaa-7bbb-8ccc-000000000001',
  orderId: '123456789012345678',
  userId: '42',
  merchantId: '7',
  type: 'paid',
  version: 2,
  occurredAt: '2026-11-25T05:00:00.000Z',
}

function decodeError(body: unknown): Error {
  try {
    decodeEvent(typeof body === 'string' ? body : JSON.stringify(body))
  } catch (err) {
    expect(isShardkitError(err, 'USAGE'), String(err)).toBe(true)
    return err as Error
  }
  throw new Error('decodeEvent accepted a bad body')
}

describe('decodeEvent', () => {
  it('round-trips an event through encodeEvent', () => {
    expect(decodeEvent(encodeEvent(good))).toEqual(good)
    expect(decodeEvent(encodeEvent(good).toString('utf8'))).toEqual(good)
  })

  it('drops fields that are not part of the contract', () => {
    expect(decodeEvent(JSON.stringify({ ...good, total: 100 }))).toEqual(good)
  })

  it.each([
    ['eventId', { eventId: '' }],
    ['eventId', { eventId: 'x'.repeat(65) }],
    ['orderId', { orderId: 123 }],
    ['orderId', { orderId: '012' }],
    ['userId', { userId: '-1' }],
    ['merchantId', { merchantId: undefined }],
    ['type', { type: 'shipped' }],
    ['version', { version: 0 }],
    ['version', { version: 1.5 }],
    ['version', { version: '2' }],
    ['occurredAt', { occurredAt: 'yesterday' }],
  ])('names the field %s', (field, patch) => {
    const err = decodeError({ ...good, ...patch })
    expect(err.message).toContain(field)
    expect((err as { details?: { field?: string } }).details?.field).toBe(field)
  })

  it('says when the body is not JSON or not an object', () => {
    expect(decodeError('{nope').message).toMatch(/not JSON/)
    expect(decodeError('null').message).toMatch(/object/)
  })
})

describe('routing', () => {
  it('routes every event of a user to one partition, as order.<type>.<NN>', () => {
    const p = partitionOfUser(good.userId)
    expect(p).toBeGreaterThanOrEqual(0)
    expect(p).toBeLessThan(EVENT_PARTITIONS)
    expect(routingKeyOf(good)).toBe(`order.paid.${String(p).padStart(2, '0')}`)
    expect(routingKeyOf({ ...good, type: 'created' })).toBe(`order.created.${String(p).padStart(2, '0')}`)
  })

  it('builds binding keys and refuses partitions out of range', () => {
    expect(bindingKey(3)).toBe('order.*.03')
    expect(bindingKey(11, 'cancelled')).toBe('order.cancelled.11')
    for (const bad of [-1, 12, 1.5]) {
      let err: unknown
      try {
        bindingKey(bad)
      } catch (e) {
        err = e
      }
      expect(isShardkitError(err, 'USAGE')).toBe(true)
    }
  })
})
