/**
 * Named phase points for fault injection. Long operations (backfill, verify,
 * repair, drain, cutover, the dual-write store) announce points such as
 * `backfill.chunk-committed` or `cutover.fences-raised` by awaiting
 * {@link phase}. With no handler installed (production) a call costs one
 * branch. A test harness installs a handler (in-process, or the CLI's
 * socket client when `SHARDKIT_FAULT_HOOKS` is set) that can hold the
 * operation at exactly that point while the test kills, cuts or writes.
 */

/** Identifiers only, like error details: never row data or secrets. */
export type PhaseDetails = Readonly<Record<string, string | number | boolean | null>>

export type PhaseHandler = (point: string, details: PhaseDetails) => Promise<void> | void

let handler: PhaseHandler | undefined

/** Installs (or with `undefined` removes) the process-wide handler. Returns the previous one. */
export function setPhaseHandler(h: PhaseHandler | undefined): PhaseHandler | undefined {
  const prev = handler
  handler = h
  return prev
}

/**
 * Announces a point; resolves when the handler lets the operation go on.
 * @example await phase('backfill.checkpoint-saved', { dimension: 'user', lastKey: '1000' })
 */
export function phase(point: string, details: PhaseDetails = {}): Promise<void> | undefined {
  if (handler === undefined) return undefined
  return Promise.resolve(handler(point, details))
}
