/**
 * When a join of the sharded table with itself stays on one shard: every
 * table of the join must be tied to the others by an equality of a shard
 * key column (`a.user_id = b.user_id`) that is a plain AND term of its ON
 * clause or of the WHERE clause, so every row of a result tuple belongs to
 * the same key. An equality inside OR or NOT, or one that ties two other
 * tables, ties nothing. Pure.
 */
import { andTerms, isObj, type Node } from './ast.js'

/** Disjoint sets over table aliases. */
class Components {
  private readonly parent = new Map<string, string>()
  add(x: string): void { if (!this.parent.has(x)) this.parent.set(x, x) }
  find(x: string): string {
    let r = x
    while (this.parent.get(r) !== r) r = this.parent.get(r)!
    this.parent.set(x, r)
    return r
  }
  union(a: string, b: string): void { this.parent.set(this.find(a), this.find(b)) }
  get count(): number { return new Set([...this.parent.keys()].map((k) => this.find(k))).size }
  connected(xs: readonly string[]): boolean { return xs.length === 0 || xs.every((x) => this.find(x) === this.find(xs[0]!)) }
}

/**
 * Whether the tables of a join (a FROM or UPDATE table list, all of them the
 * sharded table) are tied into one group by equalities of `keyColumns`.
 * @param tables the statement's table list, first table first
 * @param where the WHERE clause (its AND terms tie tables too: a NULL never equals)
 * @param keyColumns columns whose equality keeps two rows on one shard (the dimension's key, and the primary key)
 */
export function joinStaysOnShard(tables: readonly Node[], where: unknown, keyColumns: readonly string[]): boolean {
  const keys = new Set(keyColumns.map((c) => c.toLowerCase()))
  const aliases: string[] = []
  for (const t of tables) {
    if (!isObj(t) || typeof t.table !== 'string') return false
    const alias = String(t.as ?? t.table).toLowerCase()
    // two references under one name cannot be told apart
    if (aliases.includes(alias)) return false
    aliases.push(alias)
  }
  const sets = new Components()
  for (const a of aliases) sets.add(a)
  const tie = (term: Node): void => {
    if (term.type !== 'binary_expr' || term.operator !== '=') return
    const l = term.left
    const r = term.right
    if (!isObj(l) || !isObj(r) || l.type !== 'column_ref' || r.type !== 'column_ref') return
    if (l.table == null || r.table == null || typeof l.column !== 'string' || typeof r.column !== 'string') return
    const col = l.column.toLowerCase()
    if (col !== r.column.toLowerCase() || !keys.has(col)) return
    const a = String(l.table).toLowerCase()
    const b = String(r.table).toLowerCase()
    if (a === b || !aliases.includes(a) || !aliases.includes(b)) return
    sets.union(a, b)
  }
  for (const term of andTerms(where)) tie(term)
  tables.forEach((t, i) => {
    for (const term of andTerms(t.on)) tie(term)
    // USING (user_id) ties this table to what it joins when that is already one group
    const using: unknown[] = Array.isArray(t.using) ? t.using : []
    const cols = using.map((u) => String(isObj(u) ? u.value ?? u.column ?? '' : u).toLowerCase())
    if (i > 0 && cols.some((c) => keys.has(c)) && sets.connected(aliases.slice(0, i))) sets.union(aliases[i]!, aliases[0]!)
  })
  return sets.count === 1
}
