/**
 * A test-owned redis-server (never the shared one on 6379): its own port, no
 * persistence, killed and restarted by the test. A restart comes back empty,
 * like a Redis without persistence that lost its data.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { freePort } from '../../support/mariadb-instance.js'

export interface OwnRedis {
  readonly port: number
  readonly url: string
  readonly running: boolean
  start(): Promise<void>
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port })
    s.setTimeout(300)
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', (d) => {
      s.destroy()
      resolve(d.toString().startsWith('+PONG'))
    })
    s.on('error', () => resolve(false))
    s.on('timeout', () => {
      s.destroy()
      resolve(false)
    })
  })
}

/** Starts redis-server on a free port. */
export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  const r: OwnRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined
    },
    async start() {
      if (child) return
      const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
      child = c
      exited = new Promise((resolve) => c.once('exit', () => resolve()))
      c.once('exit', () => {
        if (child === c) child = undefined
      })
      const deadline = Date.now() + 10_000
      while (!(await answers(port))) {
        if (!child) throw new Error(`redis-server on ${port} exited during start`)
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer within 10 s`)
        await new Promise((res) => setTimeout(res, 20))
      }
    },
    async kill() {
      if (!child) return
      child.kill('SIGKILL')
      await exited
    },
  }
  await r.start()
  return r
}
