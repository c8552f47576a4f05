export { runVerify, compareKey, assertClean, type VerifyOptions, type VerifyResult, type Difference, type DiffKind, type Pair } from './differ.js'
export { readLastVerify, recordVerifyRun, type VerifySummary } from './status.js'
export { rowHashSql } from './row-hash.js'
