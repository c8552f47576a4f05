/**
 * `shardctl serve [--listen 127.0.0.1:9400] [--token T] [--interval 2s]`:
 * the read-only status page, `/api/status`, `/events` (SSE), `/metrics` and
 * `/healthz` (src/serve). Loopback by default; a non-loopback address needs
 * a token (`--token`, or SHARDKIT_SERVE_TOKEN so it stays out of `ps`).
 * Prints one line `{"listening":"http://..."}` on stdout once it listens;
 * runs until SIGINT/SIGTERM.
 */
import type { Command } from 'commander'
import { loadCliConfig } from '../context.js'
import { openRuntime } from '../../runtime/runtime.js'
import { type CliIO } from '../io.js'
import { parseInterval } from './status.js'

/** Registers `shardctl serve`. */
export function registerServeCommand(program: Command, io: CliIO): void {
  program
    .command('serve')
    .description('serve the status page, /api/status, /events (SSE), /metrics (Prometheus) and /healthz; read-only')
    .option('--listen <host:port>', 'address to listen on (non-loopback needs --token)', '127.0.0.1:9400')
    .option('--token <secret>', 'required for a non-loopback address (or set SHARDKIT_SERVE_TOKEN)')
    .option('--interval <duration>', 'how often the status is rebuilt and pushed (2s, 500ms)', '2s')
    .action(async (f: { listen?: string; token?: string; interval?: string }, cmd: Command) => {
      const intervalMs = parseInterval(f.interval ?? '2s')
      const token = f.token ?? io.env.SHARDKIT_SERVE_TOKEN
      const { config } = loadCliConfig(io, cmd)
      const rt = openRuntime(config, { logger: io.logger })
      const ac = new AbortController()
      const stop = () => ac.abort()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
      try {
        // Loaded here: fastify and prom-client cost every other command's start nothing.
        const { startStatusServer } = await import('../../serve/server.js')
        const server = await startStatusServer(rt, { listen: f.listen ?? '127.0.0.1:9400', ...(token !== undefined ? { token } : {}), intervalMs })
        io.stdout.write(`${JSON.stringify({ listening: server.url, readOnly: true, token: token !== undefined })}\n`)
        io.logger.info({ url: server.url, intervalMs }, `serving the status page on ${server.url}/ (read-only)`)
        await new Promise<void>((resolve) => (ac.signal.aborted ? resolve() : ac.signal.addEventListener('abort', () => resolve(), { once: true })))
        await server.close()
      } finally {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        await rt.close()
      }
    })
}
