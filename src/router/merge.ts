/**
 * A small binary min-heap for the k-way merge of scatter-gather: one entry
 * per shard whose next row is buffered, ordered by that row's key, so each
 * merged row costs O(log shards) comparisons. Pure, no I/O.
 */

/** A binary min-heap under `compare` (negative when a sorts first). */
export class MinHeap<T> {
  private readonly items: T[] = []

  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.items.length
  }

  push(item: T): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.compare(a[i]!, a[parent]!) >= 0) break
      ;[a[i], a[parent]] = [a[parent]!, a[i]!]
      i = parent
    }
  }

  /** Removes and returns the smallest item, or undefined when empty. */
  pop(): T | undefined {
    const a = this.items
    if (a.length === 0) return undefined
    const top = a[0]!
    const last = a.pop()!
    if (a.length > 0) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && this.compare(a[l]!, a[m]!) < 0) m = l
        if (r < a.length && this.compare(a[r]!, a[m]!) < 0) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m]!, a[i]!]
        i = m
      }
    }
    return top
  }
}

/**
 * Merges already-sorted lists into one sorted list of at most `limit` items.
 * @example mergeSorted([[1, 4], [2, 3]], (a, b) => a - b, 3) // [1, 2, 3]
 */
export function mergeSorted<T>(lists: readonly (readonly T[])[], compare: (a: T, b: T) => number, limit = Infinity): T[] {
  const heap = new MinHeap<{ list: readonly T[]; i: number }>((x, y) => compare(x.list[x.i]!, y.list[y.i]!))
  for (const list of lists) if (list.length > 0) heap.push({ list, i: 0 })
  const out: T[] = []
  while (out.length < limit && heap.size > 0) {
    const top = heap.pop()!
    out.push(top.list[top.i]!)
    if (++top.i < top.list.length) heap.push(top)
  }
  return out
}
