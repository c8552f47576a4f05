import { afterAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { testRedisUrl } from '../support/db.js'

describe('test support: tcp proxy in front of the real Redis', () => {
  let proxy: TcpProxy | undefined
  afterAll(async () => {
    await proxy?.close()
  })

  it('forwards, cuts and restores', async () => {
    const target = new URL(testRedisUrl())
    proxy = await startTcpProxy({ targetHost: target.hostname, targetPort: Number(target.port || 6379) })
    const client = () => {
      const r = new Redis({ host: '127.0.0.1', port: proxy!.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 })
      r.on('error', () => undefined)
      return r
    }
    const a = client()
    await a.connect()
    expect(await a.ping()).toBe('PONG')
    proxy.cut()
    await expect(a.ping()).rejects.toThrow()
    const b = client()
    await expect(b.connect()).rejects.toThrow()
    b.disconnect()
    proxy.restore()
    const c = client()
    await c.connect()
    expect(await c.ping()).toBe('PONG')
    c.disconnect()
    a.disconnect()
  })
})
