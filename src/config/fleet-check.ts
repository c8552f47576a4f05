/**
 * What `shardctl config check` asks the servers, after the file itself is
 * valid: which dialect each one speaks, whether the fleet mixes MariaDB and
 * MySQL, and whether the legacy table has what the migration needs (the
 * `version` column, routable key columns). Problems are results, each with
 * the server it concerns and what to do; nothing is written.
 *
 * A mixed fleet is refused: no normalization makes it safe today.
 * - JSON is kept as written on MariaDB and normalized on MySQL (key order,
 *   spacing), so a row's hash can never agree across the two and repair
 *   would rewrite the same rows for ever.
 * - The collations differ (`utf8mb4_0900_*` exists only on MySQL 8, the UCA
 *   14 ones only on MariaDB 10.10+): provisioning translates them
 *   (src/provision/shard-ddl.ts), but unique keys and sort order may then
 *   compare differently on the two sides.
 * - Only MariaDB 10.11 is tested here; the MySQL branches of the dialect
 *   seam are tested as SQL text.
 */
import type { Pool } from 'mysql2/promise'
import type { Runtime } from '../runtime/runtime.js'
import { describeDialect, dialectOf, familyOf, type Dialect } from '../runtime/dialect.js'
import { redactText } from '../redact.js'
import { keyColumnNotes, lintSchema, readSchemaFacts, type SchemaFinding } from '../sql/schema-lint.js'
import { layoutOf } from '../sql/planner.js'

/** One problem `config check` found on the servers. */
export interface FleetProblem {
  readonly kind: 'unreachable' | 'mixed-fleet' | 'version-column' | 'key-column' | 'legacy-table'
  /** `legacy`, `control` or a host name; several for a mixed fleet. */
  readonly servers: readonly string[]
  readonly message: string
  /** The exact statement that fixes it, when there is one. */
  readonly fix?: string
}

export interface FleetCheck {
  /** Each server's dialect as `MariaDB 10.11.6`, or null when it did not answer. */
  readonly servers: Readonly<Record<string, string | null>>
  readonly problems: readonly FleetProblem[]
  /** Things to know that need no change (rows no key routes, for instance). */
  readonly notes: readonly string[]
}

function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown }
  return redactText(String(e?.code ?? e?.message ?? err))
}

/**
 * Asks every server of the config what it is, and the legacy table what it has.
 * @example const { problems } = await checkFleet(rt); if (problems.length) ...
 */
export async function checkFleet(rt: Runtime): Promise<FleetCheck> {
  const targets: Array<[string, () => Pool]> = [
    ['legacy', () => rt.legacy()],
    ['control', () => rt.controlServer()],
    ...Object.keys(rt.config.hosts).map((h): [string, () => Pool] => [h, () => rt.host(h)]),
  ]
  const servers: Record<string, string | null> = {}
  const dialects = new Map<string, Dialect>()
  const problems: FleetProblem[] = []
  await Promise.all(
    targets.map(async ([name, pool]) => {
      try {
        const d = await dialectOf(pool())
        dialects.set(name, d)
        servers[name] = describeDialect(d)
      } catch (err) {
        servers[name] = null
        problems.push({ kind: 'unreachable', servers: [name], message: `cannot ask ${name} what it is (${errorText(err)}); check the URL and that the server answers, or run \`config check --offline\` to check the file only` })
      }
    }),
  )
  problems.push(...mixedFleet(dialects, Object.keys(rt.config.hosts)))
  const notes: string[] = []
  if (dialects.has('legacy')) {
    const { database, table } = rt.config.legacy
    try {
      const facts = await readSchemaFacts(rt.legacy(), database, table)
      const wanted = new Set<SchemaFinding['kind']>(['version-column', 'key-column'])
      for (const f of lintSchema(facts, layoutOf(rt.config))) {
        if (wanted.has(f.kind)) problems.push({ kind: f.kind as 'version-column' | 'key-column', servers: ['legacy'], message: f.message, ...(f.fix ? { fix: f.fix } : {}) })
      }
      if (facts.columns) notes.push(...keyColumnNotes({ ...facts, columns: facts.columns }, layoutOf(rt.config)))
    } catch (err) {
      problems.push({ kind: 'legacy-table', servers: ['legacy'], message: `cannot read the legacy table ${database}.${table} (${errorText(err)}); check legacy.database and legacy.table` })
    }
  }
  return { servers, problems, notes }
}

/** The mixed-fleet problem, if the servers that answered are not all one family (pure). */
export function mixedFleet(dialects: ReadonlyMap<string, Dialect>, hosts: readonly string[]): FleetProblem[] {
  const legacy = dialects.get('legacy')
  const all = ['legacy', ...hosts].filter((n) => dialects.has(n))
  const families = new Set(all.map((n) => familyOf(dialects.get(n)!)))
  if (families.size < 2) return []
  const base = legacy ? familyOf(legacy) : familyOf(dialects.get(all[0]!)!)
  const odd = all.filter((n) => familyOf(dialects.get(n)!) !== base)
  const named = (ns: string[]) => ns.map((n) => `${n} (${describeDialect(dialects.get(n)!)})`).join(', ')
  const same = all.filter((n) => !odd.includes(n))
  return [
    {
      kind: 'mixed-fleet',
      servers: [...same, ...odd],
      message:
        `the fleet mixes MariaDB and MySQL: ${named(same)} against ${named(odd)}. ` +
        'JSON is kept as written on MariaDB and normalized on MySQL, so row hashes never agree and repair cannot converge; ' +
        'collations differ too (utf8mb4_0900_* exists only on MySQL 8). Put the shards on the same server family as legacy',
    },
  ]
}
