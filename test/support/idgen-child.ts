/**
 * A separate process holding one id-generator lease from the real MySQL
 * lease table, for the multi-process and takeover tests. Run with
 * `node --import tsx test/support/idgen-child.ts '<json args>'`.
 *
 * Speaks JSON lines (`{"event":...}`) and bare id lines on stdout:
 * - `open` once the lease is held (then waits for "go" on stdin if asked);
 * - ids, one per line, only after they were issued;
 * - `done` after `count` ids (then closes the generator, which releases the lease);
 * - `error` with the ShardkitError code if opening or issuing failed.
 * With `forever`, it issues until it is killed.
 */
import { createInterface } from 'node:readline'
import { offsetClock, systemClock } from '../../src/idgen/clock.js'
import { openIdGenerator, type IdGenerator } from '../../src/idgen/generator.js'
import { MysqlLeaseStore } from '../../src/idgen/lease.js'
import { createMysqlPool } from '../../src/runtime/mysql.js'

export interface IdChildArgs {
  readonly url: string
  readonly database: string
  readonly user: string
  readonly ttlMs: number
  readonly maxLeadMs: number
  /** Wall-clock offset of this "machine" (negative = set back). */
  readonly offsetMs?: number
  readonly worker?: number
  readonly count?: number
  readonly forever?: boolean
  readonly waitForGo?: boolean
}

const emit = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(o) + '\n')
}

async function main(args: IdChildArgs): Promise<void> {
  const pool = createMysqlPool(args.url, { connectionLimit: 2 })
  let gen: IdGenerator | undefined
  try {
    gen = await openIdGenerator({
      store: new MysqlLeaseStore(pool, args.database),
      clock: offsetClock(systemClock, args.offsetMs ?? 0),
      leaseTtlMs: args.ttlMs,
      maxLeadMs: args.maxLeadMs,
      worker: args.worker,
      owner: `idgen-child:${process.pid}`,
    })
    emit({ event: 'open', worker: gen.worker, highWaterMs: gen.status().highWaterMs, pid: process.pid })
    if (args.waitForGo) {
      const rl = createInterface({ input: process.stdin })
      await new Promise<void>((resolve) => rl.once('line', () => resolve()))
      rl.close()
    }
    let left = args.forever ? Infinity : (args.count ?? 0)
    while (left > 0) {
      const batch = await gen.nextIdsAsync(args.user, Math.min(left, 500))
      // Synchronous on Linux pipes: an id reaches the parent before the next batch is made.
      process.stdout.write(batch.join('\n') + '\n')
      left -= batch.length
    }
    emit({ event: 'done', worker: gen.worker })
  } catch (err) {
    const e = err as { code?: string; message?: string }
    emit({ event: 'error', code: e.code ?? 'unknown', message: e.message ?? String(err) })
  } finally {
    await gen?.close()
    await pool.end()
  }
}

await main(JSON.parse(process.argv[2] ?? '{}') as IdChildArgs)
