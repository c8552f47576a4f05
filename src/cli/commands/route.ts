/**
 * `shardctl route (--user N | --merchant N | --order ID) [--json]`.
 */
import type { Command } from 'commander'
import { ShardkitError } from '../../errors.js'
import { redactUrl } from '../../redact.js'
import { assertIdSyntax } from '../../idgen/layout.js'
import { resolveRoute, type RouteKey } from '../../router/router.js'
import { shardOfKey } from '../../router/shard-function.js'
import { withRuntime } from '../context.js'
import { printJson, printLine, type CliIO } from '../io.js'

export function registerRouteCommands(program: Command, io: CliIO): void {
  program
    .command('route')
    .description('name the logical shard, host, database and table of a user, merchant or order id')
    .option('--user <id>', 'a user id')
    .option('--merchant <id>', 'a merchant id')
    .option('--order <id>', 'an order id (legacy ids go through the lookup table)')
    .option('--json', 'print JSON')
    .action(async (f: { user?: string; merchant?: string; order?: string; json?: boolean }, cmd: Command) => {
      const given = [f.user !== undefined, f.merchant !== undefined, f.order !== undefined].filter(Boolean).length
      if (given !== 1) throw new ShardkitError('USAGE', 'give exactly one of --user, --merchant or --order', { argument: '--user|--merchant|--order' })
      // Checked before anything connects, naming the option (the library's own checks and messages).
      if (f.user !== undefined) shardOfKey(f.user, '--user (user id)')
      if (f.merchant !== undefined) shardOfKey(f.merchant, '--merchant (merchant id)')
      if (f.order !== undefined) assertIdSyntax(f.order, '--order (order id)')
      const key: RouteKey = f.user !== undefined ? { userId: f.user } : f.merchant !== undefined ? { merchantId: f.merchant } : { orderId: f.order! }
      const r = await withRuntime(io, cmd, async (rt) => {
        const route = await resolveRoute(rt, key)
        return { route, hostUrl: redactUrl(rt.config.hosts[route.host]!) }
      })
      if (f.json) printJson(io, { ...r.route, hostUrl: r.hostUrl })
      else printLine(io, `${r.route.dimension} shard ${r.route.logicalShard}: host ${r.route.host} (${r.hostUrl}), ${r.route.database}.${r.route.table}  [via ${r.route.via}]`)
    })
}
