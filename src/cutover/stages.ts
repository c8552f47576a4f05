/**
 * The cutover stages and what each means for one request (pure). The moves
 * between them are in transitions.ts; the switch that moves the fleet is
 * steps.ts.
 */

export const STAGES = ['legacy', 'dual-write', 'shadow-read', 'read-shards', 'write-shards', 'shards'] as const
export type Stage = (typeof STAGES)[number]

export interface StageState {
  readonly stage: Stage
  /** Increases by one with every change (including read-percent changes). */
  readonly version: number
  /** 0..100; meaningful at read-shards (legacy/dual-write/shadow-read: 0; write-shards/shards: 100). */
  readonly readPercent: number
  /** ISO-8601. */
  readonly changedAt: string
}

/** What a stage means for one request. */
export interface StagePolicy {
  readonly writePrimary: 'legacy' | 'user'
  readonly writeSecondaries: readonly ('legacy' | 'user' | 'merchant')[]
  /** 0..1 share of reads also done on the shards (shadow-read). */
  readonly shadowReadRate: number
}

/** Share of reads shadowed at `shadow-read`. */
export const SHADOW_READ_RATE = 0.1

const POLICIES: Record<Stage, StagePolicy> = {
  legacy: { writePrimary: 'legacy', writeSecondaries: [], shadowReadRate: 0 },
  'dual-write': { writePrimary: 'legacy', writeSecondaries: ['user', 'merchant'], shadowReadRate: 0 },
  'shadow-read': { writePrimary: 'legacy', writeSecondaries: ['user', 'merchant'], shadowReadRate: SHADOW_READ_RATE },
  'read-shards': { writePrimary: 'legacy', writeSecondaries: ['user', 'merchant'], shadowReadRate: 0 },
  'write-shards': { writePrimary: 'user', writeSecondaries: ['merchant', 'legacy'], shadowReadRate: 0 },
  shards: { writePrimary: 'user', writeSecondaries: ['merchant'], shadowReadRate: 0 },
}

/** What a stage means for one request. */
export function stagePolicy(state: StageState): StagePolicy {
  return POLICIES[state.stage]
}

/** A stable bucket 0..99 of a key (FNV-1a over its decimal text). */
export function readBucket(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h % 100
}

/** Whether this user's reads go to the shards at this state (read-shards ramps by a stable hash of userId). */
export function readsFromShards(state: StageState, userId: string): boolean {
  switch (state.stage) {
    case 'legacy':
    case 'dual-write':
    case 'shadow-read':
      return false
    case 'read-shards':
      return readBucket(userId) < state.readPercent
    case 'write-shards':
    case 'shards':
      return true
  }
}
