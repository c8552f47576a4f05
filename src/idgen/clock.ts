/**
 * The clocks the id generator reads, injectable so tests and benchmarks can
 * step, freeze and jump time without sleeping.
 *
 * Two clocks, because they answer different questions: the wall clock gives
 * the id's time field (and may step back or jump when NTP or an operator sets
 * it); the monotonic clock measures how long ago a lease was renewed (it never
 * goes backwards, so a wall-clock step cannot stretch a lease).
 */

/** A wall clock and a monotonic clock, both in milliseconds. */
export interface Clock {
  /** Milliseconds since the Unix epoch, as an integer. May step backwards or jump. */
  wallMs(): number
  /** Milliseconds from an arbitrary origin. Never decreases. */
  monoMs(): number
}

/** `Date.now()` and `performance.now()`. */
export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monoMs: () => performance.now(),
}

/**
 * A clock whose wall time is `base`'s shifted by `offsetMs` (negative = set
 * back). The monotonic clock is `base`'s, unchanged: setting a machine's
 * clock does not change how fast time passes.
 * @example offsetClock(systemClock, -10_000) // a machine whose clock is 10 s behind
 */
export function offsetClock(base: Clock, offsetMs: number): Clock {
  if (!Number.isInteger(offsetMs)) throw new RangeError(`offsetMs must be an integer (got ${offsetMs})`)
  return { wallMs: () => base.wallMs() + offsetMs, monoMs: () => base.monoMs() }
}

/**
 * A clock moved only by its owner: for tests, benchmarks and simulations.
 * `advance` moves both clocks; `setWall`/`stepWall` move the wall clock alone
 * (as NTP or an operator would); the monotonic clock can only go forward.
 */
export class ManualClock implements Clock {
  private wall: number
  private mono: number

  constructor(wallMs: number, monoMs = 0) {
    this.wall = ManualClock.int('wallMs', wallMs)
    this.mono = monoMs
  }

  wallMs(): number {
    return this.wall
  }

  monoMs(): number {
    return this.mono
  }

  /** Lets `ms` pass: both clocks move forward. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(${ms}): time only passes forwards; use stepWall() to set the wall clock back`)
    this.wall += ManualClock.int('ms', ms)
    this.mono += ms
  }

  /** Sets the wall clock to `wallMs` (backwards or forwards); the monotonic clock does not move. */
  setWall(wallMs: number): void {
    this.wall = ManualClock.int('wallMs', wallMs)
  }

  /** Steps the wall clock by `deltaMs` (negative = back); the monotonic clock does not move. */
  stepWall(deltaMs: number): void {
    this.wall += ManualClock.int('deltaMs', deltaMs)
  }

  /** Moves only the monotonic clock forward (time passes while the wall clock is frozen). */
  advanceMono(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advanceMono(${ms}): the monotonic clock never goes back`)
    this.mono += ms
  }

  private static int(name: string, v: number): number {
    if (!Number.isInteger(v)) throw new RangeError(`${name} must be an integer number of milliseconds (got ${v})`)
    return v
  }
}
