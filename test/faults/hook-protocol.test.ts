/**
 * The phase-hook transport itself (src/cli/fault-hooks.ts <-> the test's
 * HookServer): a point waits for the test, `continue` lets it go, `fail`
 * makes it throw, unwatched points pass at once, a vanished socket fails loudly.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { askHookSocket, installFaultHooks } from '../../src/cli/fault-hooks.js'
import { phase } from '../../src/runtime/phase-hooks.js'
import { HookServer } from './support/hook-server.js'

let restore: (() => void) | undefined
afterEach(() => {
  restore?.()
  restore = undefined
})

describe('fault hook socket protocol', () => {
  it('holds a watched point until continue, throws on fail, passes unwatched points', async () => {
    const hooks = await HookServer.listen()
    try {
      restore = installFaultHooks(hooks.path!)
      await phase('test.unwatched', { n: 1 })
      const held = hooks.waitFor('test.held', { where: (d) => d.id === 'a' })
      let passed = false
      const p = Promise.resolve(phase('test.held', { id: 'a' })).then(() => (passed = true))
      const at = await held
      expect(at).toMatchObject({ point: 'test.held', details: { id: 'a' }, pid: process.pid })
      await new Promise((r) => setTimeout(r, 50))
      expect(passed).toBe(false)
      at.continue()
      await p
      expect(passed).toBe(true)

      const failing = hooks.waitFor('test.fail')
      const q = phase('test.fail', {})
      ;(await failing).fail('boom')
      await expect(q).rejects.toThrow('fault injected at test.fail: boom')
      expect(hooks.seen).toEqual(['test.unwatched', 'test.held', 'test.fail'])
    } finally {
      await hooks.close()
    }
  })

  it('a socket nobody listens on fails the point with a message naming it', async () => {
    await expect(askHookSocket('/nonexistent/shardkit-hooks.sock', { point: 'test.x', details: {}, pid: 1 })).rejects.toThrow(/fault hook socket .* failed at test.x/)
  })
})
