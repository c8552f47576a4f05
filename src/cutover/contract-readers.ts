/**
 * The backfill and verify status readers the guards call (contracts-11),
 * in one place so the guards' dependencies on other modules are explicit.
 */
export { readBackfillStatus, type BackfillStatus } from '../backfill/status.js'
export { readLastVerify, readLastFullVerify, type VerifySummary } from '../verify/status.js'
