/**
 * The point of no return waits for a person: `cutover advance` into
 * write-shards (and shards), run through a pseudo-terminal (`script` from
 * util-linux gives the child a real tty), shows the plan and asks for the
 * target stage's name; a wrong answer changes nothing (exit 3). Without a
 * terminal and without `--yes` it exits 3 and says why; `--yes` goes ahead;
 * `--dry-run` prints the exact steps without asking.
 */
import { execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readStageState } from '../../src/cutover/switch-store.js'
import { testFleetRaw } from '../support/db.js'
import { setupFleet, walkTo, type Fleet } from '../integration/cutover-support.js'
import { writeConfigFile } from '../integration/operator-support.js'

const root = join(import.meta.dirname, '..', '..')
let fleet: Fleet
let configPath: string
const cli = (args: string[]) => [process.execPath, '--import', 'tsx', join(root, 'bin', 'shardctl.ts'), '-c', configPath, ...args]
const env = { ...process.env, SHARDKIT_ACTOR: 'pty-dba', SHARDKIT_LOG_LEVEL: 'warn' }
const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`
/**
 * The command line `script` hands to $SHELL -c. `exec` makes the shell
 * become shardctl: dash (/bin/sh, CI's shell) otherwise stays as a parent in
 * the terminal's process group, takes the Ctrl-C itself and dies of it (exit
 * 130) even though shardctl stopped cleanly.
 */
const onPty = (args: string[]) => `exec ${cli(args).map(quote).join(' ')}`

beforeAll(async () => {
  fleet = await setupFleet('confirm')
  configPath = writeConfigFile(testFleetRaw({ prefix: fleet.prefix }))
  await walkTo(fleet.rt, 'read-shards', 100)
})
afterAll(async () => {
  await fleet?.cleanup()
})

/** Runs shardctl under `script` (a pty), answers `answer` once the prompt shows, returns the exit code and what the terminal showed. */
function onTerminal(args: string[], answer: string): Promise<{ code: number; screen: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', onPty(args), '/dev/null'], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let screen = ''
    let answered = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`no exit within 60 s; the terminal showed:\n${screen}`))
    }, 60_000)
    child.stdout.on('data', (c: Buffer) => {
      screen += c.toString()
      if (!answered && screen.includes('to go ahead; anything else cancels:')) {
        answered = true
        child.stdin.write(`${answer}\r`)
      }
    })
    child.stderr.on('data', (c: Buffer) => (screen += c.toString()))
    child.on('exit', (code) => {
      clearTimeout(timer)
      child.stdin.end()
      resolve({ code: code ?? -1, screen })
    })
  })
}

function noTerminal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...rest] = cli(args)
  return new Promise((resolve) => {
    execFile(cmd!, rest, { cwd: root, env }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
}

const force = ['--force', '--reason', 'pty test: guards not under test here']

describe('cutover advance into write-shards asks a person', () => {
  it('without a terminal and without --yes: exit 3, says why, nothing changes', async () => {
    const before = await readStageState(fleet.rt)
    const r = await noTerminal(['cutover', 'advance', ...force])
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toContain('point of no return')
    expect(r.stderr).toContain('--yes')
    expect(await readStageState(fleet.rt)).toEqual(before)
  })

  it('--dry-run runs the same checks, prints the exact steps and asks nothing', async () => {
    // No backfill or verify ran in this fleet: the dry run reports the guards it would need forced (exit 3).
    const r = await noTerminal(['cutover', 'advance', '--dry-run', ...force])
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toContain('(dry run) refused')
    expect(r.stdout).not.toContain('to go ahead')
    expect(r.stdout).toContain('would raise-fences')
    expect(r.stdout).toContain('would drain-journal')
    expect((await readStageState(fleet.rt)).stage).toBe('read-shards')
  })

  it('on a terminal: shows the plan, a wrong name cancels (exit 3), the right one moves', async () => {
    const wrong = await onTerminal(['cutover', 'advance', ...force], 'shards')
    expect(wrong.code, wrong.screen).toBe(3)
    expect(wrong.screen).toContain('PLAN (nothing has changed yet)')
    expect(wrong.screen).toContain('raise-fences')
    expect(wrong.screen).toContain('confirmation did not match')
    expect((await readStageState(fleet.rt)).stage).toBe('read-shards')

    const right = await onTerminal(['cutover', 'advance', ...force], 'write-shards')
    expect(right.code, right.screen).toBe(0)
    expect(right.screen).toContain('Type the target stage name (write-shards)')
    expect(right.screen).toContain('confirmed: moving to write-shards')
    expect((await readStageState(fleet.rt)).stage).toBe('write-shards')
  })

  it('--yes is for automation: no terminal, no question, the move is made', async () => {
    const r = await noTerminal(['cutover', 'advance', '--yes', '--json', ...force])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'done', to: { stage: 'shards' } })
  })

  it('status --watch on a terminal redraws in place, and stops on Ctrl-C', async () => {
    const r = await new Promise<{ code: number; screen: string }>((resolve, reject) => {
      const child = spawn('script', ['-qefc', onPty(['status', '--watch', '--interval', '300ms']), '/dev/null'], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] })
      let screen = ''
      let sent = false
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`no exit within 60 s; the terminal showed:\n${screen}`))
      }, 60_000)
      child.stdout.on('data', (c: Buffer) => {
        screen += c.toString()
        if (!sent && screen.split('\x1b[H\x1b[2J').length > 3) {
          sent = true
          child.stdin.write('\x03')
        }
      })
      child.on('exit', (code) => {
        clearTimeout(timer)
        child.stdin.end()
        resolve({ code: code ?? -1, screen })
      })
    })
    expect(r.code, r.screen).toBe(0)
    const frames = r.screen.split('\x1b[H\x1b[2J').slice(1)
    expect(frames.length).toBeGreaterThanOrEqual(3)
    for (const f of frames.slice(0, 3)) expect(f).toMatch(/^Stage: shards v\d+;/)
    expect(r.screen).not.toContain('"schemaVersion"')
  })
})
