/**
 * One worker's id timeline (pure: the caller passes the wall clock in).
 *
 * - the time field never decreases: time = max(last issued, wall clock);
 * - 128 ids per ms; when a ms is used up it borrows the next one, at most
 *   `maxLeadMs` ahead of the wall clock and never beyond the lease's recorded
 *   reservation (`ceilingMs`);
 * - past that it refuses at once, never waits: no call blocks the event loop.
 */
import { ShardkitError } from '../errors.js'
import { ID_EPOCH_MS, ID_TIME_LIMIT_MS, MAX_SEQUENCE } from './layout.js'

/** Why the timeline did not move (numbers, so the hot path allocates nothing). */
export const Step = { OK: 0, BEHIND: 1, PAST_RESERVATION: 2, TIME_EXHAUSTED: 3, BEFORE_EPOCH: 4 } as const
/** A {@link Step} value. */
export type StepResult = (typeof Step)[keyof typeof Step]

/** An ISO date for messages (raw number when out of Date's range). */
export const iso = (ms: number): string => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms))

/** The timeline of one leased worker: the last time issued and its sequence. */
export class IdTimeline {
  /** The last id time issued (Unix ms), or the high-water it starts after. */
  lastMs: number
  /** The sequence of the last id issued (MAX at the start: the first id lands after `lastMs`). */
  seq = MAX_SEQUENCE
  issued = 0
  private refusedT = 0
  private refusedWall = 0

  constructor(
    startAfterMs: number,
    /** No id time above this (the lease reservation recorded in the store). */
    public ceilingMs: number,
    private readonly maxLeadMs: number,
  ) {
    this.lastMs = startAfterMs
  }

  /** Moves one id forward and returns `Step.OK`, or returns why not (nothing moves). */
  tryStep(wall: number): StepResult {
    let t: number
    let seq: number
    if (wall > this.lastMs) {
      t = wall
      seq = 0
    } else if (this.seq < MAX_SEQUENCE) {
      t = this.lastMs
      seq = this.seq + 1
    } else {
      t = this.lastMs + 1
      seq = 0
    }
    let why: StepResult = Step.OK
    if (t > wall + this.maxLeadMs) why = Step.BEHIND
    else if (t > this.ceilingMs) why = Step.PAST_RESERVATION
    else if (t > ID_TIME_LIMIT_MS) why = Step.TIME_EXHAUSTED
    else if (t < ID_EPOCH_MS) why = Step.BEFORE_EPOCH
    if (why !== Step.OK) {
      this.refusedT = t
      this.refusedWall = wall
      return why
    }
    this.lastMs = t
    this.seq = seq
    this.issued++
    return Step.OK
  }

  /** The error for the last refusal; all but TIME_EXHAUSTED and BEFORE_EPOCH are retryable. */
  refusal(why: StepResult, worker: number): ShardkitError {
    const t = this.refusedT
    const wall = this.refusedWall
    switch (why) {
      case Step.BEHIND:
        return new ShardkitError(
          'ID_CLOCK_BEHIND',
          `worker ${worker} has issued ids up to ${iso(this.lastMs)} but the wall clock reads ${iso(wall)}: the next id would be ${t - wall} ms ahead, beyond maxLeadMs ${this.maxLeadMs}. Retry in a moment (more than 128 ids/ms were asked for), or check NTP if the clock was set back`,
          { worker, leadMs: t - wall, maxLeadMs: this.maxLeadMs },
          { retryable: true },
        )
      case Step.PAST_RESERVATION:
        return new ShardkitError(
          'ID_CLOCK_BEHIND',
          `the next id time ${iso(t)} is past worker ${worker}'s reservation in the control database (${iso(this.ceilingMs)}), so the lease's reservation is behind the clock (did it jump ahead?); a renewal was started: retry in a moment`,
          { worker, reservedUntilMs: this.ceilingMs },
          { retryable: true },
        )
      case Step.TIME_EXHAUSTED:
        return new ShardkitError('ID_TIME_EXHAUSTED', `the id time field ends at ${iso(ID_TIME_LIMIT_MS)}; ids after it would need a new layout`, { worker })
      default:
        return new ShardkitError('ID_CLOCK_BEHIND', `the wall clock reads ${iso(wall)}, before the id epoch ${iso(ID_EPOCH_MS)}: fix this machine's clock`, { worker })
    }
  }
}
