/**
 * Event ids: UUIDv7 (RFC 9562) built from `node:crypto`, no dependency. The
 * first 48 bits are Unix milliseconds, so ids sort by time as text; within one
 * millisecond a 12-bit counter in `rand_a` (RFC 9562 §6.2, method 1) keeps the
 * ids of one process strictly increasing, and 62 random bits make ids of
 * different processes collide with negligible probability.
 */
import { randomBytes } from 'node:crypto'

let lastMs = -1
let counter = 0

/**
 * A new UUIDv7 string (36 characters, lower-case hex).
 * @example newEventId() // '019abc12-3def-7123-8abc-0123456789ab'
 */
export function newEventId(now: number = Date.now()): string {
  let ms = now
  if (ms <= lastMs) {
    ms = lastMs
    counter++
    // The counter ran out within one ms: borrow the next ms (ids stay ordered, time drifts by at most a ms).
    if (counter > 0xfff) {
      ms = lastMs + 1
      counter = 0
    }
  } else {
    counter = randomBytes(2).readUInt16BE(0) & 0x3ff // a random start leaves room to count
  }
  lastMs = ms
  const b = randomBytes(16)
  b.writeUIntBE(ms, 0, 6)
  b[6] = 0x70 | ((counter >> 8) & 0x0f)
  b[7] = counter & 0xff
  b[8] = 0x80 | (b[8]! & 0x3f)
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
