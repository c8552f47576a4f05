/**
 * Runs a repair over the keys of a verify report: prints the statements
 * (default) or applies them key by key, each under a shared lock on the
 * source row, then compares those keys again. A stage change during an
 * executing repair stops it: the statements applied are idempotent, and a
 * new verify and repair finish the job.
 */
import type { PoolConnection } from 'mysql2/promise'
import { ShardkitError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import { readStageState } from '../cutover/switch-store.js'
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
  /** After executing: the differences still present among those keys. */
  readonly remaining: readonly Difference[]
  readonly clean: boolean
}

export async function runRepair(rt: Runtime, differences: readonly Difference[], opts: RepairOptions = {}): Promise<RepairResult> {
  const before = await readStageState(rt)
  const planner = await RepairPlanner.open(rt, before.stage)
  const byKey = new Map<string, Difference[]>()
  for (const d of differences) byKey.set(d.key, [...(byKey.get(d.key) ?? []), d])
  const unrepairable: string[] = []
  let statements = 0
  let applied = 0
  for (const [key, diffs] of byKey) {
    opts.signal?.throwIfAborted()
    if (diffs.every((d) => d.kind === 'bad-shard-field')) {
      unrepairable.push(key)
      continue
    }
    if (!opts.execute) {
      const row = await planner.readSource(key, diffs)
      for (const s of planner.statementsFor(key, row, diffs)) {
        statements++
        opts.onStatement?.(s, printable(s))
      }
      continue
    }
    const conns = new Map<string, PoolConnection>()
    try {
      const row = await planner.readSource(key, diffs, async (ref) => {
        let c = conns.get(ref.host)
        if (!c) {
          c = await planner.poolOf(ref).getConnection()
          conns.set(ref.host, c)
          await c.beginTransaction()
        }
        return c
      })
      for (const s of planner.statementsFor(key, row, diffs)) {
        statements++
        opts.onStatement?.(s, printable(s))
        await planner.apply(s)
        applied++
      }
      for (const c of conns.values()) await c.commit()
    } finally {
      for (const c of conns.values()) {
        await c.rollback().catch(() => undefined)
        c.release()
      }
    }
  }
  let remaining: Difference[] = []
  if (opts.execute) {
    const after = await readStageState(rt)
    if (after.version !== before.version) {
      throw new ShardkitError('PRECONDITION_FAILED', `the stage changed during repair (version ${before.version} -> ${after.version}); the statements applied are idempotent: run \`shardctl verify --report <file>\` and \`shardctl repair\` again`, { from: before.version, to: after.version })
    }
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
    remaining,
    clean: opts.execute ? remaining.length === 0 && unrepairable.length === 0 : false,
  }
}
