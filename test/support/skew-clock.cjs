// Preloaded into a child process (NODE_OPTIONS=--require) to stand in for a machine whose clock is
// off by SHARDKIT_TEST_CLOCK_SKEW_MS: Date.now() and new Date() shift, monotonic timers do not.
const skew = Number(process.env.SHARDKIT_TEST_CLOCK_SKEW_MS || 0)
const RealDate = Date
class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + skew)
    else super(...args)
  }
  static now() {
    return RealDate.now() + skew
  }
}
globalThis.Date = SkewedDate
