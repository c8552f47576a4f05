/**
 * Helpers of the operator-surface tests (status, job control, serve):
 * shardctl run in-process with captured output, config files on disk, and
 * the status document's rule that every null field says why.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { pino } from 'pino'
import { main } from '../../src/cli/main.js'
import type { CliIO } from '../../src/cli/io.js'

/** Writes `raw` as a config file in a fresh temporary directory; returns its path. */
export function writeConfigFile(raw: unknown, name = 'shardkit.json'): string {
  const dir = mkdtempSync(join(tmpdir(), 'shardkit-operator-'))
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(raw, null, 2))
  return path
}

/** What one in-process shardctl run printed. */
export interface CliRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  /** stdout parsed as JSON, when it is one document. */
  readonly json: any
}

/** Runs shardctl in this process (the real command tree and main), capturing stdout, stderr and the logs. */
export async function shardctlInProcess(configPath: string, args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  const out = new PassThrough()
  const err = new PassThrough()
  let stdout = ''
  let stderr = ''
  out.on('data', (c: Buffer) => (stdout += c.toString()))
  err.on('data', (c: Buffer) => (stderr += c.toString()))
  const io: CliIO = {
    stdout: out,
    stderr: err,
    env: { ...process.env, SHARDKIT_ACTOR: 'operator-test', ...env },
    cwd: process.cwd(),
    logger: pino({ level: 'info' }, err),
    isTTY: false,
  }
  const code = await main(['node', 'shardctl', '-c', configPath, ...args], io)
  let json: unknown
  try {
    json = JSON.parse(stdout)
  } catch {
    json = undefined
  }
  return { code, stdout, stderr, json }
}

/**
 * Every null field of the document has a reason: in its own object's `why`
 * (by field name), or, for an object without one, in the nearest enclosing
 * `why` under `<field>.<subfield>`. Returns the paths that break the rule.
 */
export function nullsWithoutWhy(doc: unknown): string[] {
  const bad: string[] = []
  const walk = (v: unknown, path: string, why: Record<string, string> | undefined, prefix: string) => {
    if (v === null || typeof v !== 'object') return
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`, undefined, ''))
      return
    }
    const o = v as Record<string, unknown>
    const own = o.why && typeof o.why === 'object' ? (o.why as Record<string, string>) : undefined
    const ctx = own ?? why
    const pre = own ? '' : prefix
    for (const [k, x] of Object.entries(o)) {
      if (k === 'why') continue
      if (x === null) {
        if (!ctx || typeof ctx[pre + k] !== 'string' || ctx[pre + k]!.length === 0) bad.push(`${path}.${k}`)
      } else walk(x, `${path}.${k}`, ctx, `${pre}${k}.`)
    }
  }
  walk(doc, '$', undefined, '')
  return bad
}

/** Prometheus text parsed by parse-prometheus-text-format (a parser of the exposition format, not ours). */
export async function parseMetrics(text: string): Promise<Map<string, import('parse-prometheus-text-format').PromFamily>> {
  const { default: parse } = await import('parse-prometheus-text-format')
  return new Map(parse(text).map((f) => [f.name, f]))
}

/** The value of one sample whose labels include `labels` (undefined when absent). */
export function sampleValue(families: Map<string, import('parse-prometheus-text-format').PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.get(name)
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))
  if (!m) return undefined
  return Number(m.value ?? m.count)
}

/**
 * A histogram's `_count` or `_sum` for one label set, read from the exposition
 * text: parse-prometheus-text-format folds a histogram with labels into one
 * labelless entry (it keeps only the buckets), so labelled histograms are
 * read line by line here after the parser has accepted the whole text.
 */
export function histogramSample(text: string, name: string, part: 'count' | 'sum', labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_${part}\\{([^}]*)\\} (\\S+)$`).exec(line)
    if (!m) continue
    const got = Object.fromEntries([...m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]))
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2])
  }
  return undefined
}
