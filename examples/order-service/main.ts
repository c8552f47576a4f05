/**
 * The order service process: `tsx examples/order-service/main.ts --config
 * shardkit.json --port 8080 [--host 127.0.0.1] [--instance-id ID]`.
 * The composition root: opens the runtime, follows the stage, leases an id
 * worker, starts the journal drainer and the HTTP server; on SIGTERM/SIGINT
 * stops taking requests, finishes those in flight, then closes everything
 * once. Logs are pino JSON on stderr; one line `{"listening":"http://..."}`
 * on stdout says where it listens.
 */
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { createLogger, DualWriteStore, JournalDrainer, loadConfig, openRuntime, redactText, ShardkitMetrics, StageWatcher } from '../../src/index.js'
import { createOutboxHook, OutboxRelay } from '../../src/events/index.js'
import { buildApp } from './app.js'
import { openIdSource } from './ids.js'
import { installFaultHooks } from '../../src/cli/fault-hooks.js'

function usage(msg: string): never {
  process.stderr.write(`order-service: ${msg}\nusage: main.ts --config PATH --port N [--host ADDR] [--instance-id ID] [--log-level LEVEL] [--events off|outbox|relay] [--id-mirror]\n`)
  process.exit(2)
}

let args
try {
  args = parseArgs({ options: { config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, 'instance-id': { type: 'string' }, 'log-level': { type: 'string', default: 'info' }, events: { type: 'string', default: 'off' }, 'id-mirror': { type: 'boolean', default: false } } }).values
} catch (err) {
  usage((err as Error).message)
}
if (!args.config) usage('--config is required')
const port = Number(args.port ?? '8080')
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be a whole number from 0 to 65535 (got ${args.port})`)
const events = args.events ?? 'off'
if (events !== 'off' && events !== 'outbox' && events !== 'relay') usage(`--events must be off, outbox or relay (got ${events})`)
const instanceId = args['instance-id'] ?? `orders-${hostname()}-${process.pid}`

// The fault harness and the soak hold or kill an instance at a phase point (e.g. after a primary
// commit, before the copies); never set outside them.
if (process.env.SHARDKIT_FAULT_HOOKS) installFaultHooks(process.env.SHARDKIT_FAULT_HOOKS)

const logger = createLogger({ name: 'order-service', level: args['log-level'] })
const { config } = loadConfig({ path: args.config })
const rt = openRuntime(config, { logger })
// Prometheus metrics on /metrics: the store's and watcher's series, journal depth, relay counters.
const metrics = new ShardkitMetrics()
metrics.trackJournalDepth(rt)
const watcher = new StageWatcher(rt, { instanceId, logger, metrics })
const drainer = new JournalDrainer(rt, { logger })
let ids: Awaited<ReturnType<typeof openIdSource>> | undefined
let store: DualWriteStore | undefined
let relay: OutboxRelay | undefined
let app: Awaited<ReturnType<typeof buildApp>> | undefined

let closing: Promise<void> | undefined
function shutdown(reason: string, code: number): Promise<void> {
  closing ??= (async () => {
    logger.info({ reason }, 'shutting down: finishing requests in flight')
    const hardStop = setTimeout(() => {
      logger.error('shutdown took over 30 s; exiting')
      process.exit(1)
    }, 30_000)
    hardStop.unref()
    try {
      await app?.close()
      await store?.flush()
      await drainer.stop().catch(() => undefined)
      await relay?.stop().catch(() => undefined)
      await ids?.close()
      await watcher.close()
    } catch (err) {
      logger.error({ err }, 'error during shutdown')
      code = 1
    } finally {
      await rt.close()
    }
    logger.info('stopped')
    process.exitCode = code
  })()
  return closing
}
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void shutdown(sig, 0))

try {
  await watcher.start()
  ids = await openIdSource(rt, { owner: instanceId, logger, mirror: args['id-mirror'] === true })
  store = new DualWriteStore({ runtime: rt, stage: watcher, logger, metrics, ...(events !== 'off' ? { onPrimaryWrite: createOutboxHook({ config: rt.config }) } : {}) })
  drainer.start()
  if (events === 'relay') {
    relay = new OutboxRelay({ runtime: rt, logger })
    metrics.bindRelay(relay)
    relay.start()
  }
  const idsRef = ids
  app = await buildApp({ store, stage: watcher, ids: idsRef.source, logger, readyChecks: [() => idsRef.ready()], metrics: metrics.registry })
  const address = await app.listen({ port, host: args.host })
  logger.info({ address, instanceId, events, stage: watcher.current()?.stage ?? null }, 'order service listening')
  process.stdout.write(`${JSON.stringify({ listening: address, instanceId, pid: process.pid })}\n`)
} catch (err) {
  const e = err as { code?: string; message?: string }
  process.stderr.write(`order-service: ${redactText(String(e.message ?? err))}\n`)
  await shutdown('startup failed', 1)
}
