/**
 * The shape of `shardkit.json`, validated with zod so that every problem in a
 * file is reported at once with its path. `parseConfig` turns a raw object
 * (already read from disk, `${VAR}`s not yet expanded) into a resolved
 * {@link ShardkitConfig} or throws `CONFIG_INVALID` listing every problem.
 */
import { z } from 'zod'
import { ShardkitError } from '../errors.js'
import { redactUrl } from '../redact.js'
import { LOGICAL_SHARDS, type Dimension, DIMENSIONS } from '../router/shard-function.js'
import { DIALECT_NAMES, type DialectSetting } from '../runtime/dialect.js'

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_$]{0,63}$/
const IDENT_MSG = 'must be a plain identifier (letters, digits, _ or $, starting with a letter or _, at most 64 characters)'
const identifier = z.string({ error: 'must be a string' }).regex(IDENT_RE, IDENT_MSG)
/** An identifier that may contain `{shard}`, expanded to the 3-digit logical shard (007). */
const templatedIdentifier = z
  .string({ error: 'must be a string' })
  .refine((s) => IDENT_RE.test(s.replaceAll('{shard}', '000')), { message: `${IDENT_MSG}; {shard} may appear and becomes the 3-digit shard number` })

/** Exchange and queue names: letters, digits, . _ - : (RabbitMQ allows more; we keep names safe for logs and URLs). */
function identifierish() {
  return z.string({ error: 'must be a string' }).regex(/^[A-Za-z0-9._:-]{1,200}$/, 'must be 1-200 characters of letters, digits, . _ - :')
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

function urlOf(protocols: readonly string[], example: string) {
  return z.string({ error: 'must be a string' }).superRefine((s, ctx) => {
    const probe = s.replace(ENV_REF, 'x')
    let u: URL
    try {
      u = new URL(probe)
    } catch {
      ctx.addIssue({ code: 'custom', message: `is not a valid URL; write it like ${example}` })
      return
    }
    if (!protocols.includes(u.protocol)) {
      ctx.addIssue({ code: 'custom', message: `must use ${protocols.join(' or ')} (got ${u.protocol}); write it like ${example}` })
    } else if (u.hostname === '') {
      ctx.addIssue({ code: 'custom', message: `has no host; write it like ${example}` })
    }
  })
}
const mysqlUrl = urlOf(['mysql:', 'mariadb:'], 'mysql://user:${PASSWORD}@127.0.0.1:3306')
const redisUrl = urlOf(['redis:', 'rediss:'], 'redis://127.0.0.1:6379')
const amqpUrl = urlOf(['amqp:', 'amqps:'], 'amqp://guest:${RABBITMQ_PASSWORD}@127.0.0.1:5672')
const hookUrl = urlOf(['http:', 'https:'], 'https://hooks.example.com/shardkit?token=${HOOK_TOKEN}')

/** Notifications (src/notify): a URL that gets a JSON POST, or a command that gets the JSON on stdin. */
const notifySchema = z
  .strictObject({
    url: hookUrl.optional(),
    /** argv (no shell), e.g. ["/usr/local/bin/page-oncall", "--team", "db"]. */
    command: z.array(z.string({ error: 'must be a string' }).min(1, 'must not be empty'), { error: 'must be a list of strings (argv), e.g. ["/usr/local/bin/page-oncall"]' }).min(1, 'must name the program').optional(),
    /** Bound on one attempt. */
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Further attempts after a failed one. */
    retries: z.number().int().min(0).max(10).default(3),
    /** A backfill throttled this long notifies once. */
    throttledMinutes: z.number().int().min(1).max(7 * 24 * 60).default(30),
  })
  .refine((n) => n.url !== undefined || n.command !== undefined, { message: 'names neither "url" nor "command"; give one (or remove "notify")' })

const decimalId = z
  .union([z.string(), z.number()], { error: 'must be a decimal string such as "1000000"' })
  .superRefine((v, ctx) => {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0) ctx.addIssue({ code: 'custom', message: 'must be a non-negative integer; write large ids as decimal strings' })
      return
    }
    if (!/^(0|[1-9][0-9]{0,18})$/.test(v) || BigInt(v) > 2n ** 63n - 1n) {
      ctx.addIssue({ code: 'custom', message: 'must be a decimal string from "0" to "9223372036854775807" without leading zeros' })
    }
  })
  .transform((v) => String(v))

/** `"0-59"`, `"7"`, `"0-9,20-29"` or a number. */
const shardSet = z.union([z.number(), z.string()], { error: 'must be a shard number or a range like "0-59"' })

const placementEntry = z.strictObject({
  shards: shardSet,
  host: z.string({ error: 'must name a host from "hosts"' }),
  database: templatedIdentifier,
  table: templatedIdentifier,
})

const dimensionSchema = z.strictObject({
  /** The shard function. Only `mod` exists today: `key mod 120`. */
  shardFunction: z.literal('mod', { error: 'must be "mod" (key mod 120)' }).default('mod'),
  placement: z.array(placementEntry, { error: 'must be a list of { shards, host, database, table }' }).min(1, 'must place the 120 logical shards'),
})

const dialectName = z.enum(DIALECT_NAMES, { error: `must be one of ${DIALECT_NAMES.join(', ')}` })

/**
 * Which SQL dialect each server speaks: `auto` (default) reads `SELECT VERSION()`
 * once per pool; a name overrides it (for a proxy that hides the server), fleet-wide
 * or per server: `{ "default": "auto", "legacy": "mysql8", "h1": "mariadb" }`.
 */
const dialectSchema = z.union([dialectName, z.record(z.string(), dialectName, { error: 'must map "default", "legacy", "control" or a host name to a dialect' })], {
  error: `must be one of ${DIALECT_NAMES.join(', ')}, or an object mapping "default", "legacy", "control" or a host name to one`,
})

export const configSchema = z.strictObject({
  legacy: z.strictObject({
    url: mysqlUrl,
    database: identifier,
    table: identifier,
    primaryKey: identifier.default('order_id'),
    userColumn: identifier.default('user_id'),
    merchantColumn: identifier.default('merchant_id'),
    /** Every legacy order id is at or below this; every new id is above it. */
    idCeiling: decimalId,
  }),
  control: z.strictObject({
    url: mysqlUrl,
    database: identifier.default('shardkit_control'),
  }),
  redis: z
    .strictObject({
      url: redisUrl.default('redis://127.0.0.1:6379'),
      keyPrefix: z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 characters of letters, digits, : _ . -').default('shardkit:'),
    })
    .default({ url: 'redis://127.0.0.1:6379', keyPrefix: 'shardkit:' }),
  hosts: z.record(identifier, mysqlUrl, { error: 'must map host names to mysql:// URLs' }),
  dimensions: z.strictObject({
    user: dimensionSchema,
    merchant: dimensionSchema,
  }),
  /** Order events (outbox, relay, consumers); see src/events. */
  events: z
    .strictObject({
      url: amqpUrl.default('amqp://guest:guest@127.0.0.1:5672'),
      /** Topic exchange the relay publishes to. */
      exchange: identifierish().default('shardkit.order-events'),
      /** How long published outbox rows are kept before pruning. */
      retentionMs: z.number().int().min(0).max(30 * 86_400_000).default(3_600_000),
    })
    .default({ url: 'amqp://guest:guest@127.0.0.1:5672', exchange: 'shardkit.order-events', retentionMs: 3_600_000 }),
  idgen: z
    .strictObject({
      /** How long a worker lease lives without renewal. */
      leaseTtlMs: z.number().int().min(3_000, 'must be at least 3000 ms').max(3_600_000).default(30_000),
      /** How far the generator may run ahead of the wall clock before failing with ID_CLOCK_BEHIND. */
      maxLeadMs: z.number().int().min(1).max(60_000).default(1_000),
    })
    .default({ leaseTtlMs: 30_000, maxLeadMs: 1_000 }),
  dialect: dialectSchema.default('auto'),
  notify: notifySchema.optional(),
})

export type RawConfig = z.input<typeof configSchema>

/** One logical shard's physical home. */
export interface ShardPlacement {
  readonly dimension: Dimension
  readonly shard: number
  readonly host: string
  readonly database: string
  readonly table: string
}

export interface DimensionConfig {
  readonly shardFunction: 'mod'
  /** Exactly 120 entries, index = logical shard. */
  readonly shards: readonly ShardPlacement[]
}

/** A validated config with `${VAR}`s expanded and shard ranges resolved. */
export interface ShardkitConfig {
  readonly legacy: {
    readonly url: string
    readonly database: string
    readonly table: string
    readonly primaryKey: string
    readonly userColumn: string
    readonly merchantColumn: string
    readonly idCeiling: string
  }
  readonly control: { readonly url: string; readonly database: string }
  readonly redis: { readonly url: string; readonly keyPrefix: string }
  readonly hosts: Readonly<Record<string, string>>
  readonly dimensions: Readonly<Record<Dimension, DimensionConfig>>
  readonly idgen: { readonly leaseTtlMs: number; readonly maxLeadMs: number }
  readonly events: { readonly url: string; readonly exchange: string; readonly retentionMs: number }
  /** The dialect of each server as the config sets it: `default`, `legacy`, `control` and host names (absent: `auto`). */
  readonly dialect?: Readonly<Record<string, DialectSetting>>
  /** Where stage changes, refusals, verify differences and backfill ends are sent (absent: nowhere). */
  readonly notify?: NotifyConfig
}

/** The dialect the config sets for a server (`legacy`, `control` or a host name), or `auto`. */
export function dialectSetting(config: Pick<ShardkitConfig, 'dialect'>, target: string): DialectSetting {
  return config.dialect?.[target] ?? config.dialect?.default ?? 'auto'
}

/** The `notify` section, `${VAR}`s in the URL expanded. */
export interface NotifyConfig {
  readonly url?: string
  readonly command?: readonly string[]
  readonly timeoutMs: number
  readonly retries: number
  readonly throttledMinutes: number
}

/** One problem found in a config file. */
export interface ConfigProblem {
  /** Dotted path into the file, e.g. `dimensions.user.placement[2].shards`. */
  readonly path: string
  readonly message: string
}

function pathString(path: readonly PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`
  return out || '(root)'
}

/** Parses `"0-9,20-29"` into shard numbers, or returns a problem message. */
export function parseShardSet(spec: string | number): number[] | string {
  const parts = typeof spec === 'number' ? [String(spec)] : spec.split(',').map((s) => s.trim())
  const out: number[] = []
  for (const part of parts) {
    const m = /^(\d{1,3})(?:\s*-\s*(\d{1,3}))?$/.exec(part)
    if (!m) return `"${part}" is not a shard number or range; write "0-59" or "7"`
    const lo = Number(m[1])
    const hi = m[2] === undefined ? lo : Number(m[2])
    if (hi < lo) return `range "${part}" runs backwards; write "${hi}-${lo}"`
    if (hi >= LOGICAL_SHARDS) return `shard ${hi} is out of range; logical shards are 0-${LOGICAL_SHARDS - 1}`
    for (let s = lo; s <= hi; s++) out.push(s)
  }
  return out
}

/** Expands `{shard}` to the 3-digit shard number. */
export function expandShardTemplate(template: string, shard: number): string {
  return template.replaceAll('{shard}', String(shard).padStart(3, '0'))
}

function expandEnv(value: string, path: string, env: Readonly<Record<string, string | undefined>>, problems: ConfigProblem[]): string {
  return value.replace(ENV_REF, (_m, name: string) => {
    const v = env[name]
    if (v === undefined) {
      problems.push({ path, message: `refers to \${${name}}, which is not set; export ${name} or write the value in the file` })
      return ''
    }
    return encodeURIComponent(v)
  })
}

/** A plain object's own entries, or undefined for anything else (arrays, null, scalars). */
function objectOf(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
}

interface Resolved {
  readonly hosts: Record<string, string>
  readonly dimensions: Record<Dimension, DimensionConfig>
  readonly urls: { readonly legacy: string; readonly control: string; readonly redis: string; readonly events: string; readonly notify: string }
}

/**
 * The checks zod cannot express (placement covers 0..119 once, hosts exist,
 * no shared physical table, `${VAR}`s set), run over `src`: the validated
 * data, or the raw input when zod found problems. Every access is guarded,
 * and a value of the wrong shape is skipped (zod has reported it), so one
 * pass reports every problem in the file without reporting one twice.
 */
function resolve(src: unknown, env: Readonly<Record<string, string | undefined>>, problems: ConfigProblem[]): Resolved {
  const root = objectOf(src) ?? {}
  const url = (v: unknown, p: string) => (typeof v === 'string' ? expandEnv(v, p, env, problems) : '')
  const rawHosts = objectOf(root.hosts)
  const hosts: Record<string, string> = {}
  for (const [name, u] of Object.entries(rawHosts ?? {})) hosts[name] = url(u, `hosts.${name}`)
  if (rawHosts && Object.keys(rawHosts).length === 0) problems.push({ path: 'hosts', message: 'names no host; add at least one, e.g. "h1": "mysql://root@127.0.0.1:3306"' })

  const dimensions = {} as Record<Dimension, DimensionConfig>
  const tableOwner = new Map<string, string>()
  for (const dim of DIMENSIONS) {
    const d = objectOf(objectOf(root.dimensions)?.[dim])
    const slots: (ShardPlacement | undefined)[] = new Array(LOGICAL_SHARDS).fill(undefined)
    const placement = Array.isArray(d?.placement) ? (d.placement as unknown[]) : undefined
    placement?.forEach((item, i) => {
      const entry = objectOf(item)
      if (!entry) return
      const base = `dimensions.${dim}.placement[${i}]`
      const host = typeof entry.host === 'string' ? entry.host : undefined
      if (host !== undefined && rawHosts && !(host in rawHosts)) {
        problems.push({ path: `${base}.host`, message: `names host "${host}", which is not in "hosts" (known: ${Object.keys(rawHosts).join(', ') || 'none'})` })
      }
      if (typeof entry.shards !== 'string' && typeof entry.shards !== 'number') return
      const set = parseShardSet(entry.shards)
      if (typeof set === 'string') {
        problems.push({ path: `${base}.shards`, message: set })
        return
      }
      for (const shard of set) {
        if (slots[shard] !== undefined) {
          problems.push({ path: `${base}.shards`, message: `places ${dim} shard ${shard} a second time; each shard 0-119 must appear exactly once` })
          continue
        }
        const database = typeof entry.database === 'string' ? expandShardTemplate(entry.database, shard) : ''
        const table = typeof entry.table === 'string' ? expandShardTemplate(entry.table, shard) : ''
        const p: ShardPlacement = { dimension: dim, shard, host: host ?? '', database, table }
        if (host !== undefined && typeof entry.database === 'string' && typeof entry.table === 'string') {
          const key = `${hosts[host] ?? host}/${database}.${table}`
          const owner = tableOwner.get(key)
          if (owner !== undefined) {
            problems.push({ path: `${base}.table`, message: `puts ${dim} shard ${shard} in ${database}.${table} on host ${host}, which already holds ${owner}; give each shard its own table (use {shard} in the name)` })
          } else tableOwner.set(key, `${dim} shard ${shard}`)
        }
        slots[shard] = p
      }
    })
    const missing = slots.flatMap((s, i) => (s === undefined ? [i] : []))
    // Without a placement list zod has already said so; "does not place 0-119" would only repeat it.
    if (placement && missing.length > 0) {
      problems.push({ path: `dimensions.${dim}.placement`, message: `does not place ${dim} shards ${compactRanges(missing)}; each shard 0-119 must appear exactly once` })
    }
    dimensions[dim] = { shardFunction: 'mod', shards: slots as ShardPlacement[] }
  }
  const dialect = objectOf(root.dialect)
  for (const k of Object.keys(dialect ?? {})) {
    if (k !== 'default' && k !== 'legacy' && k !== 'control' && !(rawHosts && k in rawHosts)) {
      problems.push({ path: `dialect.${k}`, message: `names "${k}", which is neither "default", "legacy", "control" nor a host in "hosts" (known: ${Object.keys(rawHosts ?? {}).join(', ') || 'none'})` })
    }
  }
  checkUrlDatabase(root, problems)
  const urls = {
    legacy: url(objectOf(root.legacy)?.url, 'legacy.url'),
    control: url(objectOf(root.control)?.url, 'control.url'),
    redis: url(objectOf(root.redis)?.url, 'redis.url'),
    events: url(objectOf(root.events)?.url, 'events.url'),
    notify: url(objectOf(root.notify)?.url, 'notify.url'),
  }
  return { hosts, dimensions, urls }
}

/**
 * Validates a raw config object and resolves it. Shape problems (zod) and
 * placement problems are found in one pass, so a file with a bad table name
 * and a missing shard reports both.
 * @param raw the parsed JSON
 * @param env where `${VAR}` references are looked up (the loader passes `process.env`)
 * @throws ShardkitError `CONFIG_INVALID` with `details.problems` listing every `path: message`
 * @example parseConfig(JSON.parse(text), process.env)
 */
export function parseConfig(raw: unknown, env: Readonly<Record<string, string | undefined>> = {}): ShardkitConfig {
  const result = configSchema.safeParse(raw)
  const problems: ConfigProblem[] = []
  if (!result.success) {
    for (const issue of result.error.issues) problems.push({ path: pathString(issue.path), message: issue.message })
  }
  const r = resolve(result.success ? result.data : raw, env, problems)
  if (!result.success || problems.length > 0) throw configError(problems)
  const c = result.data
  return {
    legacy: { ...c.legacy, url: r.urls.legacy },
    control: { url: r.urls.control, database: c.control.database },
    redis: { url: r.urls.redis, keyPrefix: c.redis.keyPrefix },
    hosts: r.hosts,
    dimensions: {
      user: { ...r.dimensions.user, shardFunction: c.dimensions.user.shardFunction },
      merchant: { ...r.dimensions.merchant, shardFunction: c.dimensions.merchant.shardFunction },
    },
    idgen: c.idgen,
    events: { ...c.events, url: r.urls.events },
    dialect: typeof c.dialect === 'string' ? { default: c.dialect } : c.dialect,
    ...(c.notify ? { notify: { ...c.notify, ...(c.notify.url !== undefined ? { url: r.urls.notify } : {}) } } : {}),
  }
}

/**
 * A database named in a URL's path must be the one the config uses there:
 * shardkit connects to each server without a default database (the control
 * and shard databases are created by `provision`), so a path that names
 * another database would be silently ignored, or worse, believed.
 */
function checkUrlDatabase(root: Record<string, unknown>, problems: ConfigProblem[]): void {
  for (const side of ['legacy', 'control'] as const) {
    const o = objectOf(root[side])
    if (typeof o?.url !== 'string') continue
    let path: string
    try {
      path = decodeURIComponent(new URL(o.url.replace(ENV_REF, 'x')).pathname.slice(1))
    } catch {
      continue
    }
    const db = typeof o.database === 'string' ? o.database : side === 'control' ? 'shardkit_control' : undefined
    if (path !== '' && db !== undefined && path !== db) {
      problems.push({ path: `${side}.url`, message: `names database "${path}" in its path, but ${side}.database is "${db}"; remove the path from the URL, or set ${side}.database to "${path}"` })
    }
  }
}

/** `[0,1,2,5,7,8]` -> `"0-2, 5, 7-8"`. */
export function compactRanges(nums: readonly number[]): string {
  const out: string[] = []
  let i = 0
  while (i < nums.length) {
    let j = i
    while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++
    out.push(i === j ? `${nums[i]}` : `${nums[i]}-${nums[j]}`)
    i = j + 1
  }
  return out.join(', ')
}

function configError(all: ConfigProblem[]): ShardkitError {
  const seen = new Set<string>()
  const problems = all.filter((p) => {
    const k = `${p.path}: ${p.message}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
  const lines = problems.map((p) => `  ${p.path}: ${redactUrl(p.message)}`)
  return new ShardkitError(
    'CONFIG_INVALID',
    `the config has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`,
    { problems: problems.map((p) => `${p.path}: ${p.message}`) },
  )
}
