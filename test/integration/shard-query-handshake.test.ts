/**
 * Portability regression (issue 16): the server-side bound of a scatter read
 * was chosen from the handshake's version string, so a proxy that rewrites
 * it (ProxySQL) made every read on MariaDB use MySQL's MAX_EXECUTION_TIME
 * hint, which MariaDB treats as a comment: no server-side bound at all. The
 * dialect now comes from SELECT VERSION().
 */
import net from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { createMysqlPool } from '../../src/runtime/mysql.js'
import { readShard, ShardReadStopped } from '../../src/router/shard-query.js'
import { testMysqlUrl } from '../support/db.js'

/** A TCP proxy that rewrites the server version in the handshake (the first server packet) to a same-length MySQL-looking string. */
function handshakeRewriter(targetPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    let first = true
    upstream.on('data', (chunk: Buffer) => {
      if (first) {
        first = false
        // Packet header (4 bytes), protocol version (1 byte), then the NUL-terminated version string.
        const end = chunk.indexOf(0, 5)
        const len = end - 5
        const fake = Buffer.from('8.0.36-proxysql'.padEnd(len, 'x').slice(0, len))
        fake.copy(chunk, 5)
      }
      client.write(chunk)
    })
    client.on('data', (c) => upstream.write(c))
    const done = () => (client.destroy(), upstream.destroy())
    client.on('close', done).on('error', done)
    upstream.on('close', done).on('error', done)
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () => new Promise<void>((res) => {
          for (const s of sockets) s.destroy()
          server.close(() => res())
        }),
      })
    })
  })
}

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

describe('portability: a handshake-rewriting proxy', () => {
  it('a proxy that rewrites the handshake version keeps the server-side bound (it fell back to a hint MariaDB ignores)', async () => {
    const port = Number(new URL(testMysqlUrl()).port || 3306)
    const proxy = await handshakeRewriter(port)
    cleanups.push(() => proxy.close())
    const pool = createMysqlPool(`mysql://root@127.0.0.1:${proxy.port}`, { connectionLimit: 2 })
    cleanups.push(() => pool.end())
    const conn = await pool.getConnection()
    // The driver believes the handshake: it thinks it talks to MySQL.
    expect((conn.connection as unknown as { _isMariaDB: boolean })._isMariaDB).toBe(false)
    conn.release()
    // The server's own statement-time limit (MariaDB 1969) stops the read, not only the client timer.
    const err = await readShard({ pool, sql: 'SELECT SLEEP(5) AS s', params: [], timeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).not.toBeInstanceOf(ShardReadStopped)
    expect((err as { errno?: number }).errno).toBe(1969)
  })

})
