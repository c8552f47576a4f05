/**
 * The CLI's fault-injection client. When a test runs shardctl with
 * `SHARDKIT_FAULT_HOOKS=/path/to.sock`, `main` installs this phase handler:
 * every `phase(point, details)` the library announces is sent to that unix
 * socket as one JSON line `{"point","details","pid"}`, and the operation
 * waits for the test's one-line reply: `continue` goes on, `fail <text>`
 * makes the phase throw (an injected error at exactly that point). Meanwhile
 * the test can kill the process (SIGKILL/SIGTERM), cut a server, or write.
 * One short connection per point, so an idle CLI never stays alive for it.
 * Never installed in production: the variable is read only by the CLI.
 */
import net from 'node:net'
import { setPhaseHandler, type PhaseDetails, type PhaseHandler } from '../runtime/phase-hooks.js'

/** What one announced point sends to the hook socket. */
export interface FaultHookMessage {
  readonly point: string
  readonly details: PhaseDetails
  readonly pid: number
}

/** Sends one point to the socket and resolves on `continue` (rejects on `fail ...`, a broken socket or another reply). */
export function askHookSocket(socketPath: string, msg: FaultHookMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath)
    let buf = ''
    let settled = false
    const settle = (err?: Error) => {
      if (settled) return
      settled = true
      sock.destroy()
      if (err) reject(err)
      else resolve()
    }
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(JSON.stringify(msg) + '\n'))
    sock.on('data', (chunk: string) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const reply = buf.slice(0, nl).trim()
      if (reply === 'continue') settle()
      else if (reply.startsWith('fail')) settle(new Error(`fault injected at ${msg.point}: ${reply.slice(4).trim() || 'fail'}`))
      else settle(new Error(`fault hook socket answered ${JSON.stringify(reply.slice(0, 40))} at ${msg.point}; expected "continue" or "fail <text>"`))
    })
    sock.on('error', (err) => settle(new Error(`fault hook socket ${socketPath} failed at ${msg.point}: ${err.message}`)))
    sock.on('close', () => settle(new Error(`fault hook socket ${socketPath} closed without a reply at ${msg.point}`)))
  })
}

/**
 * Installs the socket-backed phase handler; returns a function that puts the
 * previous handler back.
 * @example const restore = installFaultHooks('/tmp/hooks.sock')
 */
export function installFaultHooks(socketPath: string): () => void {
  const handler: PhaseHandler = (point, details) => askHookSocket(socketPath, { point, details, pid: process.pid })
  const prev = setPhaseHandler(handler)
  return () => {
    setPhaseHandler(prev)
  }
}
