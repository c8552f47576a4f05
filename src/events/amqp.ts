/**
 * The AMQP side of the events: one place that opens a RabbitMQ connection
 * with the settings the outbox relay and consumers need, and the relay's
 * confirming publisher.
 *
 * Client: `rabbitmq-client` (v5). It reconnects by itself with exponential
 * backoff and re-declares a publisher's exchanges after a reconnect, it has
 * publisher confirms and `basic.return`, and no dependencies; amqplib needs
 * the reconnection and re-declaration written by hand.
 *
 * Heartbeat 5 s and a 5 s connection timeout: a connection a proxy closed or
 * blackholed (half-open) is declared dead after about two missed heartbeats,
 * so pending publishes fail within seconds instead of hanging, and the
 * client reconnects.
 */
import { Connection, type ConnectionOptions, type Publisher, type ReturnedMessage } from 'rabbitmq-client'

/** Defaults for every events connection. */
export const AMQP_DEFAULTS = {
  heartbeatSeconds: 5,
  connectionTimeoutMs: 5_000,
  acquireTimeoutMs: 5_000,
  retryLowMs: 200,
  retryHighMs: 5_000,
} as const

export interface EventConnectionOptions {
  /** Shown in the broker's connection list (never the URL). */
  readonly name?: string
  readonly heartbeatSeconds?: number
  readonly connectionTimeoutMs?: number
  /** Called for each connection error (the client retries by itself); never given the URL. */
  readonly onError?: (err: unknown) => void
}

/**
 * Opens a reconnecting RabbitMQ connection. The caller owns it: `await conn.close()`.
 * @example const conn = openEventConnection(rt.config.events.url, { name: 'shardkit-relay' })
 */
export function openEventConnection(url: string, opts: EventConnectionOptions = {}): Connection {
  const o: ConnectionOptions = {
    url,
    connectionName: opts.name ?? 'shardkit-events',
    heartbeat: opts.heartbeatSeconds ?? AMQP_DEFAULTS.heartbeatSeconds,
    connectionTimeout: opts.connectionTimeoutMs ?? AMQP_DEFAULTS.connectionTimeoutMs,
    acquireTimeout: AMQP_DEFAULTS.acquireTimeoutMs,
    retryLow: AMQP_DEFAULTS.retryLowMs,
    retryHigh: AMQP_DEFAULTS.retryHighMs,
  }
  const conn = new Connection(o)
  // Without a listener an 'error' event would throw; the client reconnects on its own.
  conn.on('error', (err) => opts.onError?.(err))
  return conn
}

/** A publisher with confirms whose returned (unroutable) messages are remembered by message id. */
export interface ConfirmingPublisher {
  /**
   * Publishes with `mandatory` and persistence; resolves with `routed` once the
   * broker confirmed: false when it returned the message (no queue bound).
   * Rejects on a nack (code `NACK`: e.g. a queue at its cap with reject-publish) or a broken connection.
   * `to.exchange` overrides the exchange: '' is the default exchange, where the routing key is a queue name.
   */
  publish(routingKey: string, messageId: string, body: Buffer, headers?: { type?: string; timestamp?: Date }, to?: { exchange: string }): Promise<{ routed: boolean }>
  close(): Promise<void>
}

/**
 * A confirming publisher on a durable topic exchange (declared on first use and after every reconnect).
 * @example const pub = createConfirmingPublisher(conn, 'shardkit.order-events'); await pub.publish('order.paid.07', id, body)
 */
export function createConfirmingPublisher(conn: Connection, exchange: string): ConfirmingPublisher {
  const returned = new Set<string>()
  // Returns are matched by a per-publish sequence header, not the message id: the relay publishes
  // one event to several queues at once, and one of them may return it while another confirms.
  let seq = 0
  const pub: Publisher = conn.createPublisher({
    confirm: true,
    maxAttempts: 1,
    exchanges: [{ exchange, type: 'topic', durable: true }],
  })
  // The broker sends basic.return before the basic.ack of the same message on the same channel.
  pub.on('basic.return', (msg: ReturnedMessage) => {
    const k = msg.headers?.['x-shardkit-seq']
    if (k !== undefined) returned.add(String(k))
  })
  return {
    async publish(routingKey, messageId, body, headers = {}, to) {
      const k = String(++seq)
      await pub.send(
        {
          exchange: to?.exchange ?? exchange,
          headers: { 'x-shardkit-seq': k },
          routingKey,
          mandatory: true,
          durable: true,
          messageId,
          contentType: 'application/json',
          ...(headers.type ? { type: headers.type } : {}),
          ...(headers.timestamp ? { timestamp: Math.floor(headers.timestamp.getTime() / 1000) } : {}),
        },
        body,
      )
      // The client emits basic.return from setImmediate but settles the confirm at once: one turn of
      // the check phase later, every return parsed before this ack has been emitted.
      await new Promise<void>((resolve) => setImmediate(resolve))
      const unroutable = returned.delete(k)
      return { routed: !unroutable }
    },
    close: () => pub.close(),
  }
}
