/**
 * A small TCP proxy for fault tests: put it between a client and a real
 * server (MariaDB, Redis, RabbitMQ) and cut, delay or blackhole the traffic
 * without touching the shared server itself.
 */
import net from 'node:net'

export interface TcpProxy {
  /** The port clients connect to (on 127.0.0.1). */
  readonly port: number
  /** Destroys every open connection and refuses new ones until `restore()`. */
  cut(): void
  /** Accepts and forwards again, with no delay. */
  restore(): void
  /** Delays every chunk in both directions by `ms` (0 to stop delaying). */
  delay(ms: number): void
  /** Keeps connections open but forwards nothing, in either direction (a half-open peer). */
  blackhole(): void
  /** Number of client connections currently open through the proxy. */
  readonly connections: number
  close(): Promise<void>
}

type Mode = 'forward' | 'cut' | 'blackhole'

/** Starts a proxy on a free 127.0.0.1 port forwarding to `targetHost:targetPort`. */
export function startTcpProxy(opts: { targetHost?: string; targetPort: number; listenPort?: number }): Promise<TcpProxy> {
  const targetHost = opts.targetHost ?? '127.0.0.1'
  let mode: Mode = 'forward'
  let delayMs = 0
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>()

  const pipe = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk) => {
      if (mode === 'blackhole') return
      if (delayMs > 0) {
        from.pause()
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk)
          from.resume()
        }, delayMs)
      } else if (!to.destroyed) to.write(chunk)
    })
    from.on('end', () => to.end())
  }

  const server = net.createServer((client) => {
    if (mode === 'cut') {
      client.destroy()
      return
    }
    const upstream = net.connect(opts.targetPort, targetHost)
    const pair = { client, upstream }
    pairs.add(pair)
    const done = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', done).on('close', done)
    upstream.on('error', done).on('close', done)
    pipe(client, upstream)
    pipe(upstream, client)
  })

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.listenPort ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      resolve({
        port,
        cut() {
          mode = 'cut'
          for (const p of pairs) {
            p.client.destroy()
            p.upstream.destroy()
          }
          pairs.clear()
        },
        restore() {
          mode = 'forward'
          delayMs = 0
        },
        delay(ms: number) {
          delayMs = ms
        },
        blackhole() {
          mode = 'blackhole'
        },
        get connections() {
          return pairs.size
        },
        close() {
          for (const p of pairs) {
            p.client.destroy()
            p.upstream.destroy()
          }
          pairs.clear()
          return new Promise<void>((r) => server.close(() => r()))
        },
      })
    })
  })
}
