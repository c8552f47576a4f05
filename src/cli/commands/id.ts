/**
 * `shardctl id new` and `shardctl id decode`.
 */
import type { Command } from 'commander'
import { decodeId } from '../../idgen/layout.js'
import { printJson, printLine, type CliIO } from '../io.js'

export function registerIdCommands(program: Command, io: CliIO): void {
  const id = program.command('id').description('issue and decode order ids that carry the user shard')

  id.command('decode')
    .description('print the time, worker, sequence and user shard of an order id')
    .argument('<id>', 'a new-style order id (decimal)')
    .option('--json', 'print JSON')
    .action((value: string, opts: { json?: boolean }) => {
      const d = decodeId(value, 'argument <id>')
      if (opts.json) {
        printJson(io, { id: d.id, time: d.iso, worker: d.worker, sequence: d.sequence, userShard: d.shard })
      } else {
        printLine(io, `id        ${d.id}\ntime      ${d.iso}\nworker    ${d.worker}\nsequence  ${d.sequence}\nuserShard ${d.shard}`)
      }
    })
}
