/**
 * `shardctl events relay [--once] [--batch N] [--service NAME...]`: publishes
 * every primary's outbox to RabbitMQ until SIGINT/SIGTERM (logs as pino JSON
 * on stderr); with `--service`, per queue to each service's partition queues
 * (a full queue then holds back only its own events); with `--once`,
 * publishes what is there, retries held events, prunes, and exits (exit 1
 * when something was left behind: failures, a held event, the barrier, or
 * another relay holding an outbox).
 * `shardctl events status [--json] [--service NAME...] [--queue NAME...]`:
 * outbox depth, oldest unpublished age, publish rate and relay lease per
 * primary; each named queue's depth against its cap.
 */
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { OutboxRelay } from '../../events/relay.js'
import { readEventsStatus } from '../../events/status.js'
import { intOption, withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'
import { age } from '../render/age.js'

const collect = (v: string, prev: string[] = []) => [...prev, v]

export function registerEventsCommands(program: Command, io: CliIO): void {
  const ev = program.command('events').description('order events: the outbox relay and its status')

  ev.command('relay')
    .description('publish every primary outbox to the events exchange (one active relay per outbox; others stand by)')
    .option('--once', 'publish what is there now, then exit')
    .option('--batch <n>', 'rows per read', '500')
    .option('--outbox <name>', 'only this outbox (repeatable; names as `events status` prints them)', collect)
    .option('--lease-ttl <ms>', 'lease time to live; a standby takes over this long after a holder died', '10000')
    .option('--service <name>', 'publish to the queues <name>.order-events.00..11 one by one (repeatable); default: the exchange', collect)
    .option('--json', 'with --once: print the result as JSON')
    .action(async (opts: { once?: boolean; batch?: string; outbox?: string[]; leaseTtl?: string; service?: string[]; json?: boolean }, cmd: Command) => {
      const batchSize = intOption('--batch', opts.batch, { min: 1, max: 10_000 })
      const leaseTtlMs = intOption('--lease-ttl', opts.leaseTtl, { min: 300, max: 600_000 })
      await withRuntime(io, cmd, async (rt) => {
        const relay = new OutboxRelay({ runtime: rt, logger: io.logger, ...(batchSize !== undefined ? { batchSize } : {}), ...(leaseTtlMs !== undefined ? { leaseTtlMs } : {}), ...(opts.outbox ? { outboxes: opts.outbox } : {}), ...(opts.service ? { services: opts.service } : {}) })
        try {
          if (opts.once) {
            const r = await relay.drain()
            if (opts.json) printJson(io, { outboxes: r })
            else for (const x of r) printLine(io, `${x.outbox}: ${x.held ? `published ${x.published}, unroutable ${x.unroutable}, failed ${x.failed}, retried ${x.retried}, held ${x.owed}, pruned ${x.pruned}${x.blocked ? ' (left behind)' : ''}` : 'held by another relay'}`)
            const left = r.filter((x) => x.blocked)
            if (left.length > 0) {
              throw new ShardkitError('SHARD_FAILED', `events left unpublished on ${left.map((x) => x.outbox).join(', ')}; see \`shardctl events status\` and the log`, { outboxes: left.map((x) => x.outbox) }, { retryable: true })
            }
            return
          }
          io.logger.info({ holder: relay.holder }, 'events relay: started')
          relay.start()
          await new Promise<void>((resolve) => {
            const done = () => {
              process.removeListener('SIGINT', done)
              process.removeListener('SIGTERM', done)
              resolve()
            }
            process.once('SIGINT', done)
            process.once('SIGTERM', done)
          })
          io.logger.info({ stats: relay.stats() }, 'events relay: stopping')
        } finally {
          await relay.stop()
        }
      })
    })

  ev.command('status')
    .description('outbox depth, oldest unpublished age, publish rate and relay lease per primary; queue depths against their cap')
    .option('--service <name>', 'check the queues <name>.order-events.00..11 (repeatable)', collect)
    .option('--queue <name>', 'check this queue (repeatable)', collect)
    .option('--cap <n>', 'queue cap (x-max-length) to compare against', '10000')
    .option('--json', 'print JSON')
    .action(async (opts: { service?: string[]; queue?: string[]; cap?: string; json?: boolean }, cmd: Command) => {
      const cap = intOption('--cap', opts.cap, { min: 1 })
      const s = await withRuntime(io, cmd, (rt) => readEventsStatus(rt, { services: opts.service ?? [], queues: opts.queue ?? [], ...(cap ? { cap } : {}) }))
      if (opts.json) {
        printJson(io, s)
        return
      }
      const w = Math.max(7, ...s.outboxes.map((o) => o.primary.length))
      printLine(io, `${'outbox'.padEnd(w)}  ${'side'.padEnd(6)}  ${'depth'.padStart(8)}  ${'oldest'.padStart(8)}  ${'/min'.padStart(7)}  relay`)
      for (const o of s.outboxes) {
        const relay = o.relay && o.relay.holder !== '' ? `${o.relay.holder} token ${o.relay.token} ${o.relay.expiresInMs >= 0 ? `expires in ${age(o.relay.expiresInMs)}` : 'EXPIRED'}` : 'none'
        const note = o.error === 'NOT_PROVISIONED' ? '  (no outbox table: run shardctl provision)' : o.error ? `  (unreachable: ${o.error})` : ''
        printLine(io, `${o.primary.padEnd(w)}  ${o.side.padEnd(6)}  ${String(o.depth).padStart(8)}  ${age(o.oldestAgeMs).padStart(8)}  ${String(o.publishedLastMinute).padStart(7)}  ${relay}${note}`)
        for (const h of o.heldTargets) printLine(io, `${''.padEnd(w)}  held ${h.count} for ${h.target === '' ? 'the exchange (nothing bound)' : h.target}, oldest ${age(h.oldestAgeMs)}`)
      }
      printLine(io, `total depth ${s.totalDepth}, held ${s.totalHeld}, lag ${age(s.lagMs)}, published in the last minute ${s.publishedLastMinute}`)
      if (s.queues.length > 0) {
        const qw = Math.max(5, ...s.queues.map((q) => q.queue.length))
        printLine(io, '')
        printLine(io, `${'queue'.padEnd(qw)}  ${'depth'.padStart(8)}  ${'cap'.padStart(8)}  ${'fill'.padStart(6)}  consumers`)
        for (const q of s.queues) {
          if (q.messages === null) printLine(io, `${q.queue.padEnd(qw)}  ${'-'.padStart(8)}  ${String(q.cap).padStart(8)}  ${'-'.padStart(6)}  (${q.error === 'NOT_FOUND' ? 'no such queue' : `unavailable: ${q.error}`})`)
          else printLine(io, `${q.queue.padEnd(qw)}  ${String(q.messages).padStart(8)}  ${String(q.cap).padStart(8)}  ${`${Math.round((q.fill ?? 0) * 100)}%`.padStart(6)}  ${q.consumers}`)
        }
      }
    })
}
