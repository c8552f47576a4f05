import { afterAll, describe, expect, it } from 'vitest'
import mysql from 'mysql2/promise'
import { startMariadbInstance, type MariadbInstance } from '../support/mariadb-instance.js'

describe('test support: an extra mariadbd host', () => {
  let inst: MariadbInstance | undefined
  afterAll(async () => {
    await inst?.destroy()
  })

  it('starts, loses its data on nothing, dies with kill -9 and comes back', async () => {
    inst = await startMariadbInstance()
    const q = async (sql: string) => {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: inst!.port, user: 'root', connectTimeout: 1000 })
      try {
        return (await c.query(sql))[0]
      } finally {
        await c.end()
      }
    }
    await q('CREATE DATABASE t')
    await q('CREATE TABLE t.x (id INT PRIMARY KEY) ENGINE=InnoDB')
    await q('INSERT INTO t.x VALUES (1)')
    await inst.kill()
    await expect(q('SELECT 1')).rejects.toThrow()
    await inst.start()
    expect(await q('SELECT id FROM t.x')).toEqual([{ id: 1 }])
  })
})
