import { describe, expect, it } from 'vitest'
import { checkTransition, happyNext, isFinal, nextStatuses, ORDER_STATUSES, TARGET_STATUSES } from '../../examples/order-service/lifecycle.js'

const LEGAL = new Set(['created>paid', 'paid>accepted', 'accepted>delivering', 'delivering>completed', 'created>cancelled', 'paid>cancelled', 'accepted>cancelled'])

describe('order lifecycle', () => {
  it('allows exactly the seven changes of the lifecycle', () => {
    for (const from of ORDER_STATUSES) {
      for (const to of ORDER_STATUSES) {
        const r = checkTransition(from, to)
        expect(r.ok, `${from} -> ${to}`).toBe(LEGAL.has(`${from}>${to}`))
      }
    }
  })

  it('explains a refusal with the allowed targets', () => {
    const r = checkTransition('paid', 'completed')
    expect(r).toEqual({ ok: false, reason: 'an order that is paid can move only to accepted or cancelled, not completed' })
    expect(checkTransition('completed', 'cancelled')).toMatchObject({ ok: false, reason: expect.stringContaining('final') })
    expect(checkTransition('paid', 'paid')).toMatchObject({ ok: false, reason: 'the order is already paid' })
  })

  it('refuses unknown statuses on either side', () => {
    expect(checkTransition('created', 'shipped').ok).toBe(false)
    expect(checkTransition('weird', 'paid')).toMatchObject({ ok: false, reason: expect.stringContaining("'weird'") })
  })

  it('never lets a client ask for created', () => {
    expect(TARGET_STATUSES).not.toContain('created')
  })

  it('walks the happy path to completed and cancels where allowed', () => {
    const path: string[] = []
    for (let s: (typeof ORDER_STATUSES)[number] | undefined = 'created'; s; s = happyNext(s)) path.push(s)
    expect(path).toEqual(['created', 'paid', 'accepted', 'delivering', 'completed'])
    expect(happyNext('accepted', true)).toBe('cancelled')
    expect(happyNext('delivering', true)).toBe('completed')
    expect(isFinal('completed') && isFinal('cancelled')).toBe(true)
    expect(nextStatuses('delivering')).toEqual(['completed'])
  })
})
