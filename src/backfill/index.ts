export { runBackfill, legacyColumns, type BackfillOptions, type BackfillProgress, type BackfillResult } from './copier.js'
export { readBackfillStatus, type BackfillStatus } from './status.js'
export { nextChunkSize } from './plan.js'
export { CHECKPOINT_TABLE } from './checkpoints.js'
