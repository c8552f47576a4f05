/**
 * vitest global setup: resolves MySQL and Redis once for the whole run and
 * hands their URLs to every test file through `inject()`.
 */
import { connect } from 'node:net'
import type { TestProject } from 'vitest/node'
import { resolveServices } from './services.js'

/** The events tests need RabbitMQ: fail the run up front, saying what to start, rather than file by file. */
async function checkAmqp(env = process.env): Promise<string> {
  const url = new URL(env.SHARDKIT_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672')
  const host = url.hostname
  const port = Number(url.port || 5672)
  const ok = await new Promise<boolean>((resolve) => {
    const s = connect({ host, port })
    const done = (v: boolean) => (s.destroy(), resolve(v))
    s.setTimeout(3_000, () => done(false))
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
  if (!ok) throw new Error(`RabbitMQ does not answer at ${host}:${port}: start it (\`rabbitmq-server -detached\`) or set SHARDKIT_TEST_AMQP_URL=amqp://user:pass@host:port`)
  return env.SHARDKIT_TEST_AMQP_URL ? 'SHARDKIT_TEST_AMQP_URL' : 'local default'
}

declare module 'vitest' {
  export interface ProvidedContext {
    mysqlUrl: string
    redisUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const s = await resolveServices()
  const amqp = await checkAmqp()
  process.stderr.write(`[shardkit tests] mysql from ${s.sources.mysql}, redis from ${s.sources.redis}, rabbitmq from ${amqp}\n`)
  project.provide('mysqlUrl', s.mysqlUrl)
  project.provide('redisUrl', s.redisUrl)
  return () => s.stop()
}
