/**
 * Runs a repair over the keys of a verify report: prints the statements
 * (default) or applies them key by key. Executing, each key is repaired from
 * its write primary under that primary's fence at the stage the repair
 * started under and a shared lock on the primary's row (src/dualwrite/
 * replay.ts, `repairOrder`): no write to the order commits while its copies
 * are fixed, and a stage switch (which must take every fence) either waits
 * for the key in hand or, once it flipped, refuses the next key, and the
 * repair stops. The statements applied are idempotent; a new verify and
 * repair finish the job. Then the keys are compared again.
 */
import { ShardkitError, isShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { readDurableStage, readStageState } from '../cutover/switch-store.js'
import type { StageState } from '../cutover/stages.js'
import { rowShape, poolFor } from '../dualwrite/connections.js'
import { primaryDatabases, primaryOf } from '../dualwrite/placement.js'
import { repairOrder, type ReplayFailure } from '../dualwrite/replay.js'
import { phase } from '../runtime/phase-hooks.js'
import type { DiffContext, Difference } from './compare.js'
import { pairsFor } from './compare.js'
import { prepareQueries } from './differ.js'
import { recheck } from './recheck.js'
import { printable, RepairPlanner, type RepairStatement, type SourceOfTruth } from './repair.js'

export interface RepairOptions {
  /** Apply the statements (default: print only). */
  readonly execute?: boolean
  /** Called with each statement, in order. */
  readonly onStatement?: (s: RepairStatement, text: string) => void
  /** Re-check rounds after executing (default 3, 300 ms apart). */
  readonly rounds?: number
  /** Bound per copy statement (default 5000 ms). */
  readonly statementTimeoutMs?: number
  /**
   * The stage to repair under (default: the durable copy in the control
   * database, as every command reads it). Its fence must be open: a harness
   * that moves the fences itself passes the stage it set.
   */
  readonly stage?: StageState
  readonly signal?: AbortSignal
}

export interface RepairResult {
  readonly executed: boolean
  readonly stage: string
  readonly sourceOfTruth: SourceOfTruth
  readonly keys: number
  readonly statements: number
  readonly applied: number
  /** Keys repair cannot fix: a new id whose shard field is not its user's shard (the writer must be fixed). */
  readonly unrepairable: readonly string[]
  /** Copies that could not be written (host down, a lock held too long): keys and where, identifiers only. */
  readonly failed: ReadonlyArray<{ key: string } & ReplayFailure>
  /** After executing: the differences still present among those keys. */
  readonly remaining: readonly Difference[]
  readonly clean: boolean
}

/**
 * Prints or applies the repair of every key in `differences`.
 * @throws ShardkitError `PRECONDITION_FAILED` when the stage changed during an executing repair (it stopped there)
 */
export async function runRepair(rt: Runtime, differences: readonly Difference[], opts: RepairOptions = {}): Promise<RepairResult> {
  const before = opts.stage ?? (await readDurableStage(rt))?.state ?? (await readStageState(rt))
  const planner = await RepairPlanner.open(rt, before.stage)
  const byKey = new Map<string, Difference[]>()
  for (const d of differences) byKey.set(d.key, [...(byKey.get(d.key) ?? []), d])
  const unrepairable: string[] = []
  const failed: Array<{ key: string } & ReplayFailure> = []
  let statements = 0
  let applied = 0
  const shape = opts.execute ? await rowShape(rt) : undefined
  for (const [key, diffs] of byKey) {
    opts.signal?.throwIfAborted()
    if (diffs.every((d) => d.kind === 'bad-shard-field')) {
      unrepairable.push(key)
      continue
    }
    if (!opts.execute) {
      const { row } = await planner.readSource(key, diffs)
      for (const s of planner.statementsFor(key, row, diffs)) {
        statements++
        opts.onStatement?.(s, printable(s))
      }
      continue
    }
    // The source location that holds the row (or the first candidate: its gap is locked instead).
    const { at } = await planner.readSource(key, diffs)
    const primary = at ? primaryOf(at) : primaryDatabases(rt.config)[planner.source === 'legacy' ? 0 : 1]!
    const conn = await poolFor(rt, primary.host).getConnection()
    let out: Awaited<ReturnType<typeof repairOrder>>
    try {
      out = await repairOrder({ rt, shape: shape!, timeoutMs: opts.statementTimeoutMs ?? 5_000 }, conn, {
        primary,
        primaryLocation: at,
        orderId: key,
        fenceState: before,
        plan: (row) => planner.planFor(key, row, diffs),
        onApplied: (st) => phase('repair.statement-applied', { key, target: st.location.side, action: st.action }),
      })
    } catch (err) {
      if (isShardkitError(err, 'FENCE_REJECTED')) {
        throw new ShardkitError(
          'PRECONDITION_FAILED',
          `the stage changed during repair (it started at ${before.stage} v${before.version}); it stopped before key ${key}, and the statements applied are idempotent: run \`shardctl verify --report <file>\` and \`shardctl repair\` again`,
          { from: before.version, key },
          { cause: err },
        )
      }
      throw err
    } finally {
      conn.release()
    }
    const shown = planner.statementsFor(key, out.row as never, diffs)
    for (const s of shown) opts.onStatement?.(s, printable(s))
    statements += out.steps
    applied += out.steps - out.failures.length
    for (const f of out.failures) failed.push({ key, ...f })
    await phase('repair.key-repaired', { key, steps: out.steps, failures: out.failures.length })
  }
  let remaining: Difference[] = []
  if (opts.execute) {
    const q = await prepareQueries(rt)
    const ctx: DiffContext = { ceiling: rt.config.legacy.idCeiling, pairs: before.stage === 'shards' ? ['user-merchant'] : pairsFor('all') }
    remaining = await recheck(rt, differences, q.hashSql, ctx)
    for (let r = 0; r < (opts.rounds ?? 3) && remaining.length > 0; r++) {
      await new Promise((res) => setTimeout(res, 300))
      remaining = await recheck(rt, remaining, q.hashSql, ctx)
    }
  }
  return {
    executed: opts.execute ?? false,
    stage: before.stage,
    sourceOfTruth: planner.source,
    keys: byKey.size,
    statements,
    applied,
    unrepairable,
    failed,
    remaining,
    clean: opts.execute ? remaining.length === 0 && unrepairable.length === 0 && failed.length === 0 : false,
  }
}
